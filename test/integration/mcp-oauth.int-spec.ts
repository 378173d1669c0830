import { createHash, randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { Client as Pg } from 'pg';
import { apiClient, type Json } from '../support/api';
import { freePort } from '../support/free-port';
import { MCP_CLIENT_REDIRECT as REDIRECT, MemoryOAuthProvider } from '../support/mcp-oauth-client';
import { createMember, login, startTestHost, type TestHost } from '../support/host';
import { pollUntil } from '../support/poll';

const PASSWORD = 'a-long-enough-password';
const READ_TOOLS = ['aggregate_records', 'describe_object', 'get_record', 'list_actions', 'list_objects', 'query_records'];

/** A cookie jar for one "browser". */
class Browser {
  private readonly cookies = new Map<string, string>();

  async get(url: string | URL): Promise<Response> {
    return this.send(url, { method: 'GET' });
  }

  async post(url: string | URL, form: Record<string, string | string[]>, headers: Record<string, string> = {}): Promise<Response> {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) for (const one of Array.isArray(v) ? v : [v]) body.append(k, one);
    return this.send(url, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
  }

  private async send(url: string | URL, init: RequestInit): Promise<Response> {
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers as Record<string, string>), ...(cookie ? { cookie } : {}) },
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const at = pair!.indexOf('=');
      const name = pair!.slice(0, at);
      const value = pair!.slice(at + 1);
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }
}

/**
 * Custodian as the OAuth 2.1 authorization server of its MCP endpoint (MCP authorization
 * 2025-11-25), driven by the MCP SDK's own OAuth client: 401 + WWW-Authenticate → protected
 * resource metadata → authorization server metadata → dynamic registration → authorize (login and
 * consent page) → token → tools/list as that user ∩ the consented scopes. And the refusals: plain
 * or missing PKCE, a missing or foreign resource, a reused refresh token, revoked tokens and consent.
 */
describe('MCP OAuth: Custodian as the authorization server of /mcp', () => {
  let t: TestHost;
  let base: string;
  let db: Pg;
  let adminToken: string;
  let westId: string;
  let westToken: string;
  let westAccount: string;
  let eastAccount: string;
  const { call, ok } = apiClient(() => base);
  const mcpUrl = (): URL => new URL(`${base}/mcp`);
  const closers: Array<() => Promise<void>> = [];

  const identityEvents = async (action: string): Promise<Json[]> =>
    (await db.query(`SELECT payload FROM identity.outbox WHERE payload->>'action' = $1 ORDER BY id`, [action])).rows.map(
      (r: { payload: Json }) => r.payload,
    );

  /** The login + consent page, answered like a person would; resolves to the redirect back to the client. */
  const authorize = async (
    browser: Browser,
    authorizationUrl: URL | string,
    answer: { email: string; password: string; decision?: 'allow' | 'deny'; scopes?: string[] },
  ): Promise<URL> => {
    const start = await browser.get(authorizationUrl);
    expect(start.status).toBe(303);
    const pageUrl = new URL(start.headers.get('location')!, base);
    expect(pageUrl.pathname).toMatch(/^\/oauth\/interaction\//);
    const page = await browser.get(pageUrl);
    expect(page.status).toBe(200);
    const html = await page.text();
    const submit = await browser.post(
      pageUrl,
      {
        email: answer.email,
        password: answer.password,
        decision: answer.decision ?? 'allow',
        // The page's form names the scopes left ticked (scopes_chosen marks that it did).
        ...(answer.scopes ? { scope: answer.scopes, scopes_chosen: '1' } : {}),
      },
      { origin: base },
    );
    if (submit.status !== 303)
      throw new Error(`consent answered ${submit.status}: ${(await submit.text()).slice(0, 500)} (page: ${html.length} chars)`);
    let next = new URL(submit.headers.get('location')!, base);
    // Follow our own redirects (the resume step) until the answer goes back to the client.
    for (let hops = 0; next.origin === base && hops < 5; hops++) {
      const res = await browser.get(next);
      if (res.status !== 303) throw new Error(`${next.pathname} answered ${res.status}: ${(await res.text()).slice(0, 600)}`);
      next = new URL(res.headers.get('location')!, base);
    }
    expect(`${next.origin}${next.pathname}`).toBe(REDIRECT);
    return next;
  };

  /** The SDK's flow end to end; resolves to the connected client and the provider holding the tokens. */
  const connectWithOAuth = async (
    name: string,
    as: { email: string; password: string; scopes?: string[] },
  ): Promise<{ client: Client; provider: MemoryOAuthProvider }> => {
    const provider = new MemoryOAuthProvider(name);
    const first = new StreamableHTTPClientTransport(mcpUrl(), { authProvider: provider });
    await expect(new Client({ name, version: '1.0.0' }).connect(first)).rejects.toBeInstanceOf(UnauthorizedError);
    expect(provider.authorizationUrl).toBeDefined();
    const back = await authorize(new Browser(), provider.authorizationUrl!, as);
    const code = back.searchParams.get('code');
    expect(code).toBeTruthy();
    await first.finishAuth(code!);
    const client = await connect(provider, name);
    return { client, provider };
  };

  const connect = async (provider: MemoryOAuthProvider, name = 'client'): Promise<Client> => {
    const transport = new StreamableHTTPClientTransport(mcpUrl(), { authProvider: provider });
    const client = new Client({ name, version: '1.0.0' });
    await client.connect(transport);
    closers.push(async () => {
      await transport.terminateSession().catch(() => undefined);
      await client.close();
    });
    return client;
  };

  /** /mcp with a bare bearer (no SDK): the status a client would see. */
  const mcpStatus = async (token: string): Promise<number> => {
    const res = await fetch(mcpUrl(), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'probe', version: '1' } },
      }),
    });
    await res.text();
    return res.status;
  };

  const tokenRequest = async (form: Record<string, string>): Promise<{ status: number; body: Json }> => {
    const res = await fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form),
    });
    return { status: res.status, body: await res.json() };
  };

  const refresh = (provider: MemoryOAuthProvider, refreshToken = provider.saved!.refresh_token!): Promise<{ status: number; body: Json }> =>
    tokenRequest({
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: provider.info!.client_id,
      resource: `${base}/mcp`,
    });

  /** A registered public client and a PKCE pair, for hand-made authorization requests. */
  const registered = async (name: string): Promise<{ clientId: string; verifier: string; challenge: string }> => {
    const res = await fetch(`${base}/oauth/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(new MemoryOAuthProvider(name).clientMetadata),
    });
    expect(res.status).toBe(201);
    const verifier = randomBytes(32).toString('base64url');
    return {
      clientId: ((await res.json()) as { client_id: string }).client_id,
      verifier,
      challenge: createHash('sha256').update(verifier).digest('base64url'),
    };
  };

  const authorizationUrl = (params: Record<string, string>): string =>
    `${base}/oauth/auth?${new URLSearchParams({ response_type: 'code', redirect_uri: REDIRECT, scope: 'data:read', state: 's1', ...params })}`;

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    t = await startTestHost('mcp_oauth', { PORT: String(port), CUSTODIAN_PUBLIC_URL: base });
    db = new Pg({ connectionString: t.db.url });
    await db.connect();
    adminToken = (await login(base)).accessToken;
    await ok(
      call('POST', '/meta/objects', adminToken, {
        name: 'account',
        label: 'Account',
        sharingModel: 'private',
        fields: [
          { name: 'name', type: 'text', required: true, maxLength: 200 },
          { name: 'margin', type: 'number', sensitive: true },
        ],
      }),
      201,
    );
    const reps = await ok(
      call('POST', '/permission-sets', adminToken, {
        name: 'Reps',
        objects: { account: { allowRead: true, allowCreate: true, allowEdit: true } },
        integrationCapabilities: ['api_access', 'agent_access', 'mcp_access'],
      }),
      201,
    );
    const noAgents = await ok(
      call('POST', '/permission-sets', adminToken, {
        name: 'No agents',
        objects: { account: { allowRead: true } },
        integrationCapabilities: ['api_access'],
      }),
      201,
    );
    const west = await createMember(base, adminToken, 'west', [reps.id], PASSWORD);
    westId = west.userId;
    westToken = west.accessToken;
    const east = await createMember(base, adminToken, 'east', [reps.id], PASSWORD);
    await createMember(base, adminToken, 'plain', [noAgents.id], PASSWORD);
    westAccount = (await ok(call('POST', '/data/account', westToken, { name: 'West Co' }), 201)).id;
    eastAccount = (await ok(call('POST', '/data/account', east.accessToken, { name: 'East Co' }), 201)).id;
  }, 120_000);

  afterAll(async () => {
    for (const close of closers) await close();
    await db?.end();
    await t?.stop();
  });

  it('answers 401 with a challenge that leads to this server: protected resource metadata → authorization server metadata', async () => {
    const res = await fetch(mcpUrl(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(401);
    const challenge = res.headers.get('www-authenticate')!;
    const prmUrl = /resource_metadata="([^"]+)"/.exec(challenge)![1]!;
    const prm = (await (await fetch(prmUrl)).json()) as Json;
    expect(prm.resource).toBe(`${base}/mcp`);
    expect(prm.authorization_servers).toEqual([`${base}/oauth`]);
    // RFC 8414 §3: the well-known path inserted before the issuer's path.
    const meta = (await (await fetch(`${base}/.well-known/oauth-authorization-server/oauth`)).json()) as Json;
    expect(meta.issuer).toBe(`${base}/oauth`);
    expect(meta.authorization_endpoint).toBe(`${base}/oauth/auth`);
    expect(meta.token_endpoint).toBe(`${base}/oauth/token`);
    expect(meta.registration_endpoint).toBe(`${base}/oauth/reg`);
    expect(meta.revocation_endpoint).toBe(`${base}/oauth/token/revocation`);
    expect(meta.code_challenge_methods_supported).toEqual(['S256']);
    expect(meta.response_types_supported).toEqual(['code']);
    expect(meta.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token']));
    expect(meta.grant_types_supported).not.toContain('implicit');
    expect(meta.scopes_supported).toEqual(expect.arrayContaining(['data:read', 'data:write', 'actions:execute', 'metadata:write']));
    // The same document at the OIDC path the SDK also tries.
    const oidc = (await (await fetch(`${base}/oauth/.well-known/openid-configuration`)).json()) as Json;
    expect(oidc.issuer).toBe(meta.issuer);
  });

  it('the SDK registers, the user signs in and consents, and tools/list works as that user ∩ the consented scopes', async () => {
    const { client, provider } = await connectWithOAuth('Claude (test)', {
      email: 'west@test.local',
      password: PASSWORD,
      scopes: ['data:read'],
    });
    expect(provider.info!.client_id).toMatch(/^mcp_[A-Za-z0-9_-]+$/);
    // The token is the gateway's delegated agent token: user as sub, the client as act, MCP audience.
    const claims = decodeJwt(provider.saved!.access_token) as Json;
    expect(claims).toMatchObject({
      sub: westId,
      aud: `${base}/mcp`,
      iss: t.host.config.auth.issuer,
      act: { sub: provider.info!.client_id },
      agent_name: 'Claude (test)',
      scope: 'data:read',
    });
    expect(claims.sid).toMatch(/^[0-9a-f-]{36}$/);
    expect(provider.saved!.refresh_token).toBeTruthy();
    // Consent narrowed the agent to data:read: only the read tools, and only the west rep's records.
    expect((await client.listTools()).tools.map((x) => x.name).sort()).toEqual(READ_TOOLS);
    const rows = (await client.callTool({ name: 'query_records', arguments: { object: 'account', fields: ['name'] } })) as Json;
    const text = JSON.stringify(rows);
    expect(text).toContain(westAccount);
    expect(text).not.toContain(eastAccount);
    // The REST API refuses the MCP token (audience), as it does for exchanged agent tokens.
    expect((await call('GET', '/data/account', provider.saved!.access_token)).status).toBe(401);
    // Audited: the client registration, the consent with its scopes, the token.
    const registered = await identityEvents('oauth.client_registered');
    expect(registered.some((e) => e.target.id === provider.info!.client_id)).toBe(true);
    const consents = await identityEvents('oauth.consent_granted');
    expect(consents.at(-1)).toMatchObject({
      outcome: 'success',
      actor: { userId: westId },
      details: { clientId: provider.info!.client_id, scopes: ['data:read'] },
    });
    const issued = await identityEvents('oauth.token_issued');
    expect(issued.at(-1)).toMatchObject({ actor: { userId: westId }, details: { grantType: 'authorization_code' } });
  });

  it('the consent page shows the client name and the requested scopes, escaped, and never frames', async () => {
    const { clientId, challenge } = await registered('<img src=x onerror=alert(1)> Evil');
    const browser = new Browser();
    const start = await browser.get(
      authorizationUrl({
        client_id: clientId,
        code_challenge: challenge,
        code_challenge_method: 'S256',
        resource: `${base}/mcp`,
        scope: 'data:read data:write',
      }),
    );
    expect(start.status).toBe(303);
    const page = await browser.get(new URL(start.headers.get('location')!, base));
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.headers.get('cache-control')).toContain('no-store');
    const html = await page.text();
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt; Evil');
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('data:read');
    expect(html).toContain('data:write');
    expect(html).toContain('127.0.0.1:53682');
  });

  it('a wrong password shows the page again with one generic error; a user without agent_access cannot delegate', async () => {
    const { clientId, challenge } = await registered('Cursor (test)');
    const url = authorizationUrl({
      client_id: clientId,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      resource: `${base}/mcp`,
    });
    const browser = new Browser();
    const start = await browser.get(url);
    const pageUrl = new URL(start.headers.get('location')!, base);
    const wrong = await browser.post(
      pageUrl,
      { email: 'west@test.local', password: 'not-the-password', decision: 'allow' },
      { origin: base },
    );
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('Invalid email or password');
    // No agent_access: the answer to the client is access_denied, and nothing is granted.
    const denied = await browser.post(pageUrl, { email: 'plain@test.local', password: PASSWORD, decision: 'allow' }, { origin: base });
    expect(denied.status).toBe(403);
    expect(await denied.text()).toContain('agent_access');
    // The person declines: the client gets access_denied.
    const back = await authorize(new Browser(), url, { email: 'west@test.local', password: PASSWORD, decision: 'deny' });
    expect(back.searchParams.get('error')).toBe('access_denied');
    expect(back.searchParams.get('code')).toBeNull();
    expect((await identityEvents('oauth.consent_denied')).length).toBeGreaterThanOrEqual(2);
  });

  it('refuses plain PKCE, a missing code challenge, a missing resource and a foreign resource', async () => {
    const { clientId, challenge, verifier } = await registered('PKCE test');
    const browser = new Browser();
    const errorOf = async (params: Record<string, string>): Promise<string | null> => {
      const res = await browser.get(authorizationUrl({ client_id: clientId, ...params }));
      const location = res.headers.get('location');
      if (res.status === 303 && location && location.startsWith(REDIRECT)) return new URL(location).searchParams.get('error');
      return `status ${res.status}`;
    };
    const resource = `${base}/mcp`;
    expect(await errorOf({ code_challenge: verifier, code_challenge_method: 'plain', resource })).toBe('invalid_request');
    expect(await errorOf({ resource })).toBe('invalid_request');
    expect(await errorOf({ code_challenge: challenge, code_challenge_method: 'S256' })).toBe('invalid_target');
    expect(await errorOf({ code_challenge: challenge, code_challenge_method: 'S256', resource: 'https://elsewhere.example/mcp' })).toBe(
      'invalid_target',
    );
    expect(await errorOf({ code_challenge: challenge, code_challenge_method: 'S256', resource: `${base}/api/v1` })).toBe('invalid_target');
    // The token endpoint refuses a code without the right verifier.
    const back = await authorize(
      browser,
      authorizationUrl({ client_id: clientId, code_challenge: challenge, code_challenge_method: 'S256', resource }),
      { email: 'west@test.local', password: PASSWORD },
    );
    const code = back.searchParams.get('code')!;
    const wrong = await tokenRequest({
      grant_type: 'authorization_code',
      code,
      client_id: clientId,
      redirect_uri: REDIRECT,
      code_verifier: randomBytes(32).toString('base64url'),
      resource,
    });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error).toBe('invalid_grant');
  });

  it('rotates refresh tokens; a used one presented again is refused and ends the grant', async () => {
    const { provider } = await connectWithOAuth('VS Code (test)', { email: 'west@test.local', password: PASSWORD });
    const first = provider.saved!;
    const rotated = await refresh(provider);
    expect(rotated.status).toBe(200);
    expect(rotated.body.refresh_token).toBeTruthy();
    expect(rotated.body.refresh_token).not.toBe(first.refresh_token);
    const claims = decodeJwt(rotated.body.access_token) as Json;
    expect(claims).toMatchObject({ sub: westId, aud: `${base}/mcp`, act: { sub: provider.info!.client_id } });
    expect(await mcpStatus(rotated.body.access_token)).toBe(200);
    expect((await identityEvents('oauth.token_issued')).some((e) => e.details.grantType === 'refresh_token')).toBe(true);
    // The used refresh token again: refused, and the whole grant ends (its successor and access tokens).
    const reused = await refresh(provider, first.refresh_token);
    expect(reused.status).toBe(400);
    expect(reused.body.error).toBe('invalid_grant');
    expect((await refresh(provider, rotated.body.refresh_token)).body.error).toBe('invalid_grant');
    await pollUntil(async () => (await mcpStatus(rotated.body.access_token)) === 401, { what: 'the access token refused after reuse' });
  });

  it('revoking the refresh token (RFC 7009) ends access at /mcp', async () => {
    const { provider, client } = await connectWithOAuth('Revoke test', { email: 'west@test.local', password: PASSWORD });
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    const res = await fetch(`${base}/oauth/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        token: provider.saved!.refresh_token!,
        token_type_hint: 'refresh_token',
        client_id: provider.info!.client_id,
      }),
    });
    expect(res.status).toBe(200);
    await pollUntil(async () => (await mcpStatus(provider.saved!.access_token)) === 401, {
      what: 'the access token refused after revocation',
    });
    expect((await refresh(provider)).body.error).toBe('invalid_grant');
    expect((await identityEvents('oauth.token_revoked')).length).toBeGreaterThan(0);
  });

  it('revoking a JWT access token ends its grant; only the client it was issued to can', async () => {
    const { provider } = await connectWithOAuth('Access revoke test', { email: 'west@test.local', password: PASSWORD });
    const other = await registered('Someone else');
    const revoke = (clientId: string): Promise<Response> =>
      fetch(`${base}/oauth/token/revocation`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: provider.saved!.access_token, token_type_hint: 'access_token', client_id: clientId }),
      });
    // Another client: answered like any token it does not own (200), and nothing ends.
    expect((await revoke(other.clientId)).status).toBe(200);
    expect((await revoke('mcp_unknown')).status).toBe(401);
    expect(await mcpStatus(provider.saved!.access_token)).toBe(200);
    expect((await revoke(provider.info!.client_id)).status).toBe(200);
    await pollUntil(async () => (await mcpStatus(provider.saved!.access_token)) === 401, {
      what: 'the access token refused after its revocation',
    });
    expect((await refresh(provider)).body.error).toBe('invalid_grant');
    expect((await identityEvents('oauth.token_revoked')).some((e) => e.details.tokenType === 'access_token')).toBe(true);
  });

  it('the user lists and revokes a consent: its refresh token is refused and its access tokens stop at once', async () => {
    const { provider } = await connectWithOAuth('Consent test', { email: 'west@test.local', password: PASSWORD });
    const listed = await ok(call('GET', '/oauth/consents', westToken));
    const mine = listed.items.find((c: Json) => c.clientId === provider.info!.client_id);
    expect(mine).toMatchObject({ clientName: 'Consent test', scopes: expect.arrayContaining(['data:read']) });
    // Someone else cannot see or revoke it (404, like an id that does not exist).
    const other = await login(base, { email: 'east@test.local', password: PASSWORD });
    expect((await ok(call('GET', '/oauth/consents', other.accessToken))).items.some((c: Json) => c.id === mine.id)).toBe(false);
    expect((await call('DELETE', `/oauth/consents/${mine.id}`, other.accessToken)).status).toBe(404);
    // An agent token cannot manage its user's consents.
    expect((await call('DELETE', `/oauth/consents/${mine.id}`, provider.saved!.access_token)).status).toBe(401);
    expect((await call('DELETE', `/oauth/consents/${mine.id}`, westToken)).status).toBe(204);
    await pollUntil(async () => (await mcpStatus(provider.saved!.access_token)) === 401, {
      what: 'the access token refused after the consent was revoked',
    });
    expect((await refresh(provider)).body.error).toBe('invalid_grant');
    expect((await ok(call('GET', '/oauth/consents', westToken))).items.some((c: Json) => c.id === mine.id)).toBe(false);
    const revoked = await identityEvents('oauth.consent_revoked');
    expect(revoked.at(-1)).toMatchObject({ actor: { userId: westId }, target: { id: mine.id } });
  });

  it("logout-all ends the OAuth grants of the user too (their sessions are the user's sessions)", async () => {
    const { provider } = await connectWithOAuth('Logout test', { email: 'east@test.local', password: PASSWORD });
    expect(await mcpStatus(provider.saved!.access_token)).toBe(200);
    const east = await login(base, { email: 'east@test.local', password: PASSWORD });
    expect((await call('POST', '/auth/logout-all', east.accessToken)).status).toBe(200);
    await pollUntil(async () => (await mcpStatus(provider.saved!.access_token)) === 401, {
      what: 'the access token refused after logout-all',
    });
    expect((await refresh(provider)).body.error).toBe('invalid_grant');
  });

  it('a user who lost agent_access gets no new token: refresh is refused', async () => {
    const temp = await ok(
      call('POST', '/permission-sets', adminToken, {
        name: 'Temporary agents',
        objects: { account: { allowRead: true } },
        integrationCapabilities: ['agent_access', 'mcp_access'],
      }),
      201,
    );
    await createMember(base, adminToken, 'later', [temp.id], PASSWORD);
    const { provider } = await connectWithOAuth('Later test', { email: 'later@test.local', password: PASSWORD });
    const rotated = await refresh(provider);
    expect(rotated.status).toBe(200);
    provider.saveTokens({ ...provider.saved!, ...rotated.body });
    await ok(
      call('PUT', `/permission-sets/${temp.id}`, adminToken, { name: 'Temporary agents', objects: { account: { allowRead: true } } }),
    );
    expect((await refresh(provider)).body.error).toBe('invalid_grant');
  });

  it('stores no token in plaintext', async () => {
    const { provider } = await connectWithOAuth('Storage test', { email: 'west@test.local', password: PASSWORD });
    const dump = JSON.stringify((await db.query('SELECT * FROM identity.oauth_model')).rows);
    expect(dump).not.toContain(provider.saved!.refresh_token!);
    expect(dump).not.toContain(provider.saved!.access_token);
    // Anonymous registration is bounded: a client nobody consented to expires within a day; one with
    // a consent lives as long as the consent.
    const { clientId } = await registered('Never consented');
    const clients = (
      await db.query(
        `SELECT payload->>'client_id' AS id, expires_at FROM identity.oauth_model WHERE model = 'Client' AND payload->>'client_id' = ANY($1)`,
        [[clientId, provider.info!.client_id]],
      )
    ).rows as Array<{ id: string; expires_at: Date }>;
    const expiry = (id: string): number => clients.find((c) => c.id === id)!.expires_at.getTime();
    expect(expiry(clientId)).toBeLessThanOrEqual(Date.now() + 24 * 3600 * 1000 + 60_000);
    expect(expiry(provider.info!.client_id)).toBeGreaterThan(Date.now() + 7 * 24 * 3600 * 1000);
  });
  it('after a signing-key rotation the tokens are signed with the new key, and /mcp accepts them', async () => {
    const { provider } = await connectWithOAuth('Rotation test', { email: 'west@test.local', password: PASSWORD });
    const before = decodeProtectedHeader(provider.saved!.access_token).kid;
    const rotated = await ok(call('POST', '/signing-keys/rotate', adminToken, { activateAfterSeconds: 0 }), 201);
    expect(rotated.kid).not.toBe(before);
    const next = await refresh(provider);
    expect(next.status).toBe(200);
    expect(decodeProtectedHeader(next.body.access_token).kid).toBe(rotated.kid);
    // The gateway picks the new kid up with one JWKS refetch (its cooldown may have to pass first).
    await pollUntil(async () => (await mcpStatus(next.body.access_token)) === 200, { timeoutMs: 45_000, what: 'the new key accepted' });
  }, 90_000);
  it('a confidential client: its secret is stored sealed and authenticates at the token endpoint', async () => {
    const reg = await fetch(`${base}/oauth/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        ...new MemoryOAuthProvider('Confidential').clientMetadata,
        token_endpoint_auth_method: 'client_secret_basic',
      }),
    });
    expect(reg.status).toBe(201);
    const client = (await reg.json()) as { client_id: string; client_secret: string };
    expect(client.client_secret).toBeTruthy();
    const dump = JSON.stringify((await db.query(`SELECT payload FROM identity.oauth_model WHERE model = 'Client'`)).rows);
    expect(dump).not.toContain(client.client_secret);
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const back = await authorize(
      new Browser(),
      authorizationUrl({ client_id: client.client_id, code_challenge: challenge, code_challenge_method: 'S256', resource: `${base}/mcp` }),
      { email: 'west@test.local', password: PASSWORD },
    );
    const exchange = (secret: string): Promise<Response> =>
      fetch(`${base}/oauth/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${client.client_id}:${secret}`).toString('base64')}`,
        },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code: back.searchParams.get('code')!,
          redirect_uri: REDIRECT,
          code_verifier: verifier,
          resource: `${base}/mcp`,
        }),
      });
    expect((await exchange('wrong-secret')).status).toBe(401);
    const ok200 = await exchange(client.client_secret);
    expect(ok200.status).toBe(200);
    expect(await mcpStatus(((await ok200.json()) as { access_token: string }).access_token)).toBe(200);
  });
});
