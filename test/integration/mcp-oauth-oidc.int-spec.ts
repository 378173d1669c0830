import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt } from 'jose';
import { apiClient, type Json } from '../support/api';
import { freePort } from '../support/free-port';
import { MCP_CLIENT_REDIRECT as REDIRECT, MemoryOAuthProvider } from '../support/mcp-oauth-client';
import { login, startTestHost, type TestHost } from '../support/host';
import { TestBrowser, startTestIdp, type TestIdp } from '../support/oidc-idp';

const SECRET = 'idp-client-secret-for-tests-0123456789';

/**
 * The OAuth consent page's "Sign in with your identity provider" (docs/sso.md): MCP SDK client →
 * consent page → the org's OIDC sign-in at a real IdP → back to the same interaction → consent
 * without a password → token → tools/list as that user, in an org whose password login is off.
 * The return target is the interaction this browser is in, sealed in the login state; a foreign
 * interaction id and a replayed callback are refused.
 */
describe('MCP OAuth: signing in on the consent page through the org identity provider', () => {
  let t: TestHost;
  let idp: TestIdp;
  let base: string;
  let orgId: string;
  let adminToken: string;
  const { call, ok } = apiClient(() => base);
  const closers: Array<() => Promise<void>> = [];

  /** The SDK's first attempt: 401, registration, and the authorization URL it would open. */
  const begin = async (): Promise<{ provider: MemoryOAuthProvider; transport: StreamableHTTPClientTransport }> => {
    const provider = new MemoryOAuthProvider('IdP client (test)');
    const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { authProvider: provider });
    await expect(new Client({ name: 'c', version: '1' }).connect(transport)).rejects.toBeInstanceOf(UnauthorizedError);
    expect(provider.authorizationUrl).toBeDefined();
    return { provider, transport };
  };

  /** authorize → the consent page's URL (this browser now holds the interaction cookie). */
  const toConsentPage = async (browser: TestBrowser, authorizationUrl: URL): Promise<URL> => {
    const start = await browser.request(authorizationUrl.toString());
    expect(start.status).toBe(303);
    const page = new URL(start.headers.get('location')!, base);
    expect(page.pathname).toMatch(/^\/oauth\/interaction\/[^/]+$/);
    return page;
  };

  /** The IdP button: consent page → IdP → the OIDC callback URL (returned unfetched). */
  const toIdpCallback = async (browser: TestBrowser, page: URL, hint = 'alice-sub'): Promise<URL> =>
    browser.followUntil(`${page}/idp?org=${orgId}&login_hint=${hint}`, (u) => u.pathname.endsWith('/callback'));

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    t = await startTestHost('mcp_oauth_oidc', { PORT: String(port), CUSTODIAN_PUBLIC_URL: base });
    const admin = await login(base);
    orgId = admin.orgId;
    adminToken = admin.accessToken;
    await ok(
      call('POST', '/meta/objects', admin.accessToken, {
        name: 'account',
        label: 'Account',
        sharingModel: 'public_read',
        fields: [{ name: 'name', type: 'text', required: true, maxLength: 200 }],
      }),
      201,
    );
    const agents = await ok(
      call('POST', '/permission-sets', admin.accessToken, {
        name: 'Agents',
        objects: { account: { allowRead: true } },
        integrationCapabilities: ['api_access', 'agent_access', 'mcp_access'],
      }),
      201,
    );
    idp = await startTestIdp({
      clients: [{ client_id: 'custodian', client_secret: SECRET, redirect_uris: [`${base}/api/v1/auth/oidc/${orgId}/callback`] }],
      accounts: [{ sub: 'alice-sub', email: 'alice@example.com', email_verified: true, name: 'Alice', groups: ['agents'] }],
    });
    await ok(
      call('PUT', '/auth/oidc/config', admin.accessToken, {
        issuer: idp.issuer,
        clientId: 'custodian',
        clientSecret: { value: SECRET },
        scopes: ['openid', 'email', 'profile', 'groups'],
        allowedEmailDomains: ['example.com'],
        // Password login off: the IdP is the only way in, on the consent page too.
        passwordLogin: false,
        mappings: [{ claim: 'groups', value: 'agents', permissionSetIds: [agents.id] }],
      }),
    );
  }, 120_000);

  afterAll(async () => {
    for (const close of closers) await close();
    await idp?.stop();
    await t?.stop();
  });

  it('the SDK client gets a token through the IdP sign-in and lists tools as that user', async () => {
    const { provider, transport } = await begin();
    const browser = new TestBrowser();
    const page = await toConsentPage(browser, provider.authorizationUrl!);
    const first = await browser.request(page.toString());
    expect(first.status).toBe(200);
    expect(await first.text()).toContain('Sign in with your identity provider');

    const callback = await toIdpCallback(browser, page);
    const back = await browser.request(callback.toString());
    // The callback goes back to this interaction's page — a fixed path built from the uid — not to a URL from the request.
    expect(back.status).toBe(303);
    expect(back.headers.get('location')).toBe(page.toString());
    const consent = await browser.request(page.toString());
    expect(consent.status).toBe(200);
    const html = await consent.text();
    expect(html).toContain('signed in through your organization');
    expect(html).not.toContain('name="password"');

    const answer = await browser.request(page.toString(), {
      method: 'POST',
      body: new URLSearchParams({ decision: 'allow' }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base },
    });
    expect(answer.status).toBe(303);
    let next = new URL(answer.headers.get('location')!, base);
    for (let hops = 0; next.origin === base && hops < 5; hops++) {
      const res = await browser.request(next.toString());
      expect(res.status).toBe(303);
      next = new URL(res.headers.get('location')!, base);
    }
    expect(`${next.origin}${next.pathname}`).toBe(REDIRECT);
    await transport.finishAuth(next.searchParams.get('code')!);

    const claims = decodeJwt(provider.saved!.access_token) as Json;
    const users = (await ok(call('GET', '/users?limit=200', adminToken))) as Json;
    const alice = (users.items as Json[]).find((u) => u.email === 'alice@example.com');
    expect(alice).toBeDefined();
    expect(claims).toMatchObject({ sub: alice!.id, aud: `${base}/mcp`, act: { sub: provider.info!.client_id } });

    const client = new Client({ name: 'c', version: '1' });
    const live = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { authProvider: provider });
    await client.connect(live);
    closers.push(async () => {
      await live.terminateSession().catch(() => undefined);
      await client.close();
    });
    const tools = (await client.listTools()).tools.map((x) => x.name);
    expect(tools).toContain('query_records');
  });

  it('refuses an interaction id this browser is not in: no IdP redirect, no handoff', async () => {
    const victim = await begin();
    const page = await toConsentPage(new TestBrowser(), victim.provider.authorizationUrl!);
    // Another browser (no interaction cookie for that uid) cannot start a sign-in for it.
    const attacker = new TestBrowser();
    const res = await attacker.request(`${page}/idp?org=${orgId}&login_hint=alice-sub`);
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    // A uid that is not the one of this browser's interaction: refused too.
    const own = new TestBrowser();
    const ownPage = await toConsentPage(own, (await begin()).provider.authorizationUrl!);
    const forged = await own.request(`${ownPage.origin}/oauth/interaction/not-my-uid/idp?org=${orgId}&login_hint=alice-sub`);
    expect(forged.status).toBe(400);
    expect(forged.headers.get('location')).toBeNull();
    // Not an org with a connection: the page says so, nothing is started.
    const noOrg = await own.request(`${ownPage}/idp?org=00000000-0000-4000-8000-000000000000`);
    expect(noOrg.status).toBe(404);
    expect(noOrg.headers.get('set-cookie')).toBeNull();
  });

  it('a replayed OIDC callback is refused, and the handoff does not open for another interaction', async () => {
    const { provider } = await begin();
    const browser = new TestBrowser();
    const page = await toConsentPage(browser, provider.authorizationUrl!);
    const callback = await toIdpCallback(browser, page);
    const cookieBefore = new Map(browser.cookies(base));
    expect((await browser.request(callback.toString())).status).toBe(303);
    // Replay in the same browser (the login cookie is spent) and with the captured login cookie.
    const again = await browser.request(callback.toString());
    expect([again.status, ((await again.json()) as Json).code]).toEqual([400, 'oidc_state_invalid']);
    const replay = new TestBrowser();
    for (const [k, v] of cookieBefore) replay.cookies(base).set(k, v);
    const replayed = await replay.request(callback.toString());
    expect(replayed.status).toBe(401);
    expect(((await replayed.json()) as Json).code).toBe('oidc_provider_error');

    // The handoff cookie is sealed for this uid: moved to another interaction's page it is ignored.
    const other = await begin();
    const otherPage = await toConsentPage(browser, other.provider.authorizationUrl!);
    const shown = await (await browser.request(otherPage.toString())).text();
    expect(shown).toContain('name="password"');
    const posted = await browser.request(otherPage.toString(), {
      method: 'POST',
      body: new URLSearchParams({ decision: 'allow' }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base },
    });
    expect(posted.status).toBe(400);
  });

  it('discover (public) says whether an org or an email domain signs in through an IdP, and nothing else', async () => {
    const ask = async (q: string): Promise<{ status: number; body: Json }> => {
      const res = await fetch(`${base}/api/v1/auth/oidc/discover?${q}`);
      return { status: res.status, body: (await res.json()) as Json };
    };
    const start = `${base}/api/v1/auth/oidc/${orgId}/start`;
    expect(await ask(`org=${orgId}`)).toEqual({ status: 200, body: { oidc: true, startUrl: start } });
    expect(await ask('email=Someone%40Example.COM')).toEqual({ status: 200, body: { oidc: true, startUrl: start } });
    expect(await ask('email=someone%40other.test')).toEqual({ status: 200, body: { oidc: false } });
    expect(await ask('org=00000000-0000-4000-8000-000000000000')).toEqual({ status: 200, body: { oidc: false } });
    expect(await ask('org=not-an-id')).toEqual({ status: 200, body: { oidc: false } });
    const none = await ask('');
    expect([none.status, none.body.code]).toEqual([400, 'validation_failed']);
    const nested = await ask('email[a]=b');
    expect(nested.status).toBe(400);
    // The console's button leads to start?session=cookie: the IdP, then the refresh cookie and /console/.
    const browser = new TestBrowser();
    const callback = await browser.followUntil(`${start}?session=cookie&login_hint=alice-sub`, (u) => u.pathname.endsWith('/callback'));
    const done = await browser.request(callback.toString());
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe(`${base}/console/`);
  });
});
