import { generateKeyPairSync } from 'node:crypto';
import { Client } from 'pg';
import { apiClient, type Json } from '../support/api';
import { freePort } from '../support/free-port';
import { TEST_ADMIN, createMember, login, startTestHost, type TestHost } from '../support/host';
import { TestBrowser, startTestIdp, type TestIdp } from '../support/oidc-idp';
import { pollUntil } from '../support/poll';

const SECRET = 'idp-client-secret-for-tests-0123456789';

/**
 * OIDC sign-in per org against a real OpenID Provider (oidc-provider on loopback): the whole
 * browser-less code flow with PKCE, each way an ID token or the flow can be wrong refused with its
 * own code and audited, JIT provisioning with claim mappings, the email-domain allow-list, linking
 * by verified email only when allowed, password login switched off, private_key_jwt, and
 * back-channel logout ending the sessions of the IdP session.
 */
describe('OIDC sign-in per org', () => {
  let t: TestHost;
  let idp: TestIdp;
  let base: string;
  let pg: Client;
  let admin: string;
  let orgId: string;
  let groupId: string;
  let setId: string;
  const clientKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const { call, ok } = apiClient(() => base);

  const oidcPath = (rest: string): string => `${base}/api/v1/auth/oidc/${orgId}/${rest}`;
  const configure = (overrides: Record<string, unknown> = {}, token = admin): Promise<Json> =>
    ok(
      call('PUT', '/auth/oidc/config', token, {
        issuer: idp.issuer,
        clientId: 'custodian',
        clientSecret: { value: SECRET },
        scopes: ['openid', 'email', 'profile', 'groups'],
        allowedEmailDomains: ['example.com'],
        mappings: [{ claim: 'groups', value: 'engineering', groupIds: [groupId], permissionSetIds: [setId] }],
        ...overrides,
      }),
    );
  const auditRows = async (action: string, since: Date): Promise<Json[]> =>
    (await pg.query('SELECT * FROM audit.audit_event WHERE action = $1 AND occurred_at >= $2 ORDER BY occurred_at', [action, since])).rows;

  /** The browser walks start → IdP login → callback URL; the callback is returned unfetched. */
  async function toCallback(loginHint: string, browser = new TestBrowser()): Promise<{ browser: TestBrowser; callback: URL }> {
    const callback = await browser.followUntil(oidcPath(`start?login_hint=${encodeURIComponent(loginHint)}`), (u) =>
      u.pathname.endsWith('/callback'),
    );
    return { browser, callback };
  }
  async function signIn(loginHint: string, browser?: TestBrowser): Promise<{ status: number; body: Json; browser: TestBrowser }> {
    const flow = await toCallback(loginHint, browser);
    const res = await flow.browser.request(flow.callback.toString());
    return { status: res.status, body: await res.json(), browser: flow.browser };
  }

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    t = await startTestHost('oidc', { PORT: String(port), CUSTODIAN_PUBLIC_URL: base });
    pg = new Client({ connectionString: t.db.url });
    await pg.connect();
    const session = await login(base);
    admin = session.accessToken;
    orgId = session.orgId;
    groupId = (await ok(call('POST', '/groups', admin, { name: 'Engineering' }), 201)).id;
    setId = (await ok(call('POST', '/permission-sets', admin, { name: 'Auditors', systemCapabilities: ['view_audit'], objects: {} }), 201))
      .id;
    const redirect = `${base}/api/v1/auth/oidc/${orgId}/callback`;
    idp = await startTestIdp({
      clients: [
        {
          client_id: 'custodian',
          client_secret: SECRET,
          redirect_uris: [redirect],
          backchannel_logout_uri: `${base}/api/v1/auth/oidc/${orgId}/backchannel-logout`,
          backchannel_logout_session_required: true,
        },
        {
          client_id: 'custodian-pkjwt',
          redirect_uris: [redirect],
          token_endpoint_auth_method: 'private_key_jwt',
          token_endpoint_auth_signing_alg: 'PS256',
          // The IdP fetches the client's public key from Custodian's JWKS URL for the connection.
          jwks_uri: `${base}/api/v1/auth/oidc/${orgId}/jwks`,
        },
      ],
      accounts: [
        { sub: 'alice-sub', email: 'Alice@Example.com', email_verified: true, name: 'Alice', groups: ['engineering'] },
        { sub: 'bob-sub', email: 'bob@example.com', email_verified: true, name: 'Bob at the IdP' },
        { sub: 'unverified-sub', email: 'unverified@example.com', email_verified: false },
        { sub: 'mallory-sub', email: 'mallory@evil.test', email_verified: true },
        { sub: 'carol-sub', email: 'carol@example.com', email_verified: true },
      ],
    });
  });

  afterAll(async () => {
    await pg?.end();
    await idp?.stop();
    await t?.stop();
  });

  it('the connection is configured through the API: secrets are write-only and absent from the answer and the audit row', async () => {
    const since = new Date();
    expect((await call('GET', '/auth/oidc/config', admin)).status).toBe(404);
    // Not an org with a connection: the sign-in routes answer 404.
    expect((await fetch(oidcPath('start'), { redirect: 'manual' })).status).toBe(404);
    const bad = await call('PUT', '/auth/oidc/config', admin, {
      issuer: 'http://idp.example.com',
      clientId: 'x',
      clientSecret: { value: 's' },
    });
    expect([bad.status, bad.body.code]).toEqual([400, 'validation_failed']);
    const noSecret = await call('PUT', '/auth/oidc/config', admin, { issuer: idp.issuer, clientId: 'custodian' });
    expect([noSecret.status, noSecret.body.code]).toEqual([400, 'validation_failed']);

    const view = await configure();
    expect(view).toMatchObject({
      issuer: idp.issuer,
      clientId: 'custodian',
      clientAuth: 'client_secret_basic',
      enabled: true,
      jitProvisioning: true,
      linkExistingUsers: false,
      passwordLogin: true,
      clientSecret: { set: true, source: 'encrypted' },
      redirectUri: `${base}/api/v1/auth/oidc/${orgId}/callback`,
      backchannelLogoutUri: `${base}/api/v1/auth/oidc/${orgId}/backchannel-logout`,
    });
    expect(JSON.stringify(view)).not.toContain(SECRET);
    expect(JSON.stringify(await ok(call('GET', '/auth/oidc/config', admin)))).not.toContain(SECRET);
    const sealed = await pg.query("SELECT sealed FROM identity.setting WHERE org_id = $1 AND name = 'oidc.client_secret'", [orgId]);
    expect(sealed.rows[0].sealed).not.toContain(SECRET);
    const rows = await pollUntil(async () => {
      const r = await auditRows('identity.oidc.connection_changed', since);
      return r.length === 1 ? r : undefined;
    });
    expect(JSON.stringify(rows[0].event)).not.toContain(SECRET);
    expect(rows[0].event.details.secrets).toEqual([{ name: 'oidc.client_secret', change: 'set', writeOnly: true, source: 'encrypted' }]);
  });

  it('needs manage_users and manage_settings, and mappings may grant nothing the writer does not hold (R7)', async () => {
    const managersSet = (
      await ok(
        call('POST', '/permission-sets', admin, {
          name: 'IdP managers',
          systemCapabilities: ['manage_users', 'manage_settings'],
          objects: {},
        }),
        201,
      )
    ).id;
    const userSet = (
      await ok(call('POST', '/permission-sets', admin, { name: 'User managers', systemCapabilities: ['manage_users'] }), 201)
    ).id;
    const weak = await createMember(base, admin, 'usermanager', [userSet], 'a-long-enough-password');
    expect((await call('PUT', '/auth/oidc/config', weak.accessToken, { issuer: idp.issuer, clientId: 'x' })).status).toBe(403);
    const manager = await createMember(base, admin, 'idpmanager', [managersSet], 'a-long-enough-password');
    // The default mapping hands out view_audit, which this manager does not hold.
    const refused = await call('PUT', '/auth/oidc/config', manager.accessToken, {
      issuer: idp.issuer,
      clientId: 'custodian',
      clientSecret: { value: SECRET },
      mappings: [{ claim: 'groups', value: 'engineering', permissionSetIds: [setId] }],
    });
    expect([refused.status, refused.body.code, refused.body.details]).toEqual([
      403,
      'forbidden',
      { reason: 'mapping_grants_more', capabilities: ['view_audit'] },
    ]);
    // Nothing was written: the admin's connection is unchanged.
    expect((await ok(call('GET', '/auth/oidc/config', admin))).mappings).toHaveLength(1);
  });

  it('signs in a new user through the IdP: JIT account, mapped group and permission set, an ordinary session', async () => {
    const since = new Date();
    const start = await fetch(oidcPath('start?login_hint=alice-sub'), { redirect: 'manual' });
    expect(start.status).toBe(302);
    const authorize = new URL(start.headers.get('location')!);
    expect(authorize.origin).toBe(idp.issuer);
    expect(Object.fromEntries(authorize.searchParams)).toMatchObject({
      client_id: 'custodian',
      response_type: 'code',
      code_challenge_method: 'S256',
      redirect_uri: `${base}/api/v1/auth/oidc/${orgId}/callback`,
      scope: 'openid email profile groups',
    });
    expect(authorize.searchParams.get('state')).toBeTruthy();
    expect(authorize.searchParams.get('nonce')).toBeTruthy();
    expect(authorize.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(start.headers.get('set-cookie')).toMatch(
      new RegExp(`^custodian_oidc=.+; Path=/api/v1/auth/oidc/${orgId}; HttpOnly; SameSite=Lax; Max-Age=600$`),
    );

    const res = await signIn('alice-sub');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ tokenType: 'Bearer', orgId, refreshToken: expect.stringMatching(/^crt_/) });
    const me = await ok(call('GET', '/auth/me', res.body.accessToken));
    expect(me).toMatchObject({ email: 'alice@example.com', orgId, groupIds: [groupId] });
    expect(me.capabilities).toContain('view_audit');
    const user = await pg.query('SELECT home_org_id, display_name FROM identity.user_account WHERE id = $1', [me.userId]);
    expect(user.rows[0]).toEqual({ home_org_id: orgId, display_name: 'Alice' });
    // The refresh token is an ordinary one.
    const refreshed = await ok(call('POST', '/auth/refresh', undefined, { refreshToken: res.body.refreshToken }));
    expect(refreshed.orgId).toBe(orgId);

    // A second sign-in of the same subject is the same account (linked by issuer + subject).
    const again = await signIn('alice-sub');
    expect((await ok(call('GET', '/auth/me', again.body.accessToken))).userId).toBe(me.userId);

    await pollUntil(async () => {
      const logins = await auditRows('auth.login', since);
      return logins.filter((r) => r.event.details.method === 'oidc' && r.event.actor.userId === me.userId).length === 2;
    });
    const created = await pollUntil(async () => (await auditRows('identity.user.created', since)).find((r) => r.target_id === me.userId));
    expect(created.event.details).toMatchObject({ via: 'oidc', issuer: idp.issuer });
    await pollUntil(async () => (await auditRows('identity.group.member_added', since)).some((r) => r.event.details.via === 'oidc'));
    await pollUntil(async () => (await auditRows('identity.oidc.identity_linked', since)).some((r) => r.target_id === me.userId));
  });

  it('a browser sign-in (session=cookie) lands on the console with the refresh cookie, never a token in the URL', async () => {
    const browser = new TestBrowser();
    const callback = await browser.followUntil(oidcPath('start?login_hint=alice-sub&session=cookie'), (u) =>
      u.pathname.endsWith('/callback'),
    );
    const res = await browser.request(callback.toString());
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`${base}/console/`);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const refresh = browser.cookies(base).get('custodian_refresh');
    expect(refresh).toMatch(/^crt_/);
    expect(res.headers.getSetCookie().find((c) => c.startsWith('custodian_refresh='))).toMatch(/HttpOnly; SameSite=Strict/);
    // The console resumes the session from the cookie, as after a reload.
    const resumed = await browser.request(`${base}/api/v1/auth/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-custodian-csrf': '1', origin: base },
      body: '{}',
    });
    expect(resumed.status).toBe(200);
    const tokens = (await resumed.json()) as Json;
    expect(tokens.refreshToken).toBeUndefined();
    expect((await ok(call('GET', '/auth/me', tokens.accessToken))).email).toBe('alice@example.com');
    expect((await fetch(oidcPath('start?session=other'), { redirect: 'manual' })).status).toBe(400);
  });

  it('mappings follow the IdP at every sign-in: a group the claim no longer names is left', async () => {
    idp.accounts.get('alice-sub')!.groups = ['sales'];
    const res = await signIn('alice-sub');
    expect(res.status).toBe(200);
    const me = await ok(call('GET', '/auth/me', res.body.accessToken));
    expect(me.groupIds).toEqual([]);
    expect(me.capabilities).not.toContain('view_audit');
    idp.accounts.get('alice-sub')!.groups = ['engineering'];
  });

  it('refuses a callback without the browser’s login state, or with another state', async () => {
    const since = new Date();
    const { callback } = await toCallback('alice-sub');
    // Another browser (no cookie): a login CSRF attempt.
    const stranger = await fetch(callback);
    expect([stranger.status, ((await stranger.json()) as Json).code]).toEqual([400, 'oidc_state_invalid']);

    const flow = await toCallback('alice-sub');
    const tampered = new URL(flow.callback);
    tampered.searchParams.set('state', 'not-the-state');
    const wrong = await flow.browser.request(tampered.toString());
    expect([wrong.status, ((await wrong.json()) as Json).code]).toEqual([400, 'oidc_state_invalid']);
    // The state cookie is spent by any callback.
    expect(flow.browser.cookies(base).has('custodian_oidc')).toBe(false);
    await pollUntil(
      async () => (await auditRows('auth.login_failed', since)).filter((r) => r.event.details.reason === 'oidc_state_invalid').length >= 2,
    );
  });

  it.each([
    ['wrong nonce', { claims: (c: Record<string, unknown>) => ({ ...c, nonce: 'another-nonce' }) }, 'oidc_nonce_mismatch'],
    ['wrong issuer', { claims: (c: Record<string, unknown>) => ({ ...c, iss: 'https://evil.example.com' }) }, 'oidc_issuer_mismatch'],
    ['wrong audience', { claims: (c: Record<string, unknown>) => ({ ...c, aud: 'another-client' }) }, 'oidc_audience_mismatch'],
    ['a signature by a key the IdP never published', { foreignKey: true }, 'oidc_signature_invalid'],
    [
      'an expired ID token',
      {
        claims: (c: Record<string, unknown>) => ({
          ...c,
          iat: Math.floor(Date.now() / 1000) - 7200,
          exp: Math.floor(Date.now() / 1000) - 3600,
        }),
      },
      'oidc_token_expired',
    ],
  ])('refuses %s with its own code, audited with the IdP and the reason', async (_what, rewrite, code) => {
    const since = new Date();
    idp.rewriteNextIdToken(rewrite);
    const res = await signIn('alice-sub');
    expect([res.status, res.body.code]).toEqual([401, code]);
    expect(JSON.stringify(res.body)).not.toMatch(/refreshToken|accessToken/);
    const failed = await pollUntil(async () => (await auditRows('auth.login_failed', since)).find((r) => r.event.details.reason === code));
    expect(failed.event).toMatchObject({ orgId, outcome: 'failure', details: { method: 'oidc', issuer: idp.issuer } });
  });

  it('refuses an email domain outside the allow-list and an unverified email', async () => {
    const outside = await signIn('mallory-sub');
    expect([outside.status, outside.body.code]).toEqual([403, 'oidc_email_domain_not_allowed']);
    const unverified = await signIn('unverified-sub');
    expect([unverified.status, unverified.body.code]).toEqual([403, 'oidc_email_not_verified']);
    const made = await pg.query("SELECT 1 FROM identity.user_account WHERE email IN ('mallory@evil.test', 'unverified@example.com')");
    expect(made.rowCount).toBe(0);
  });

  it('links an existing member by verified email only when the org allows it', async () => {
    const bob = await ok(
      call('POST', '/users', admin, { email: 'bob@example.com', displayName: 'Bob', password: 'a-long-enough-password' }),
      201,
    );
    const refused = await signIn('bob-sub');
    expect([refused.status, refused.body.code, refused.body.details]).toEqual([403, 'oidc_link_not_allowed', { reason: 'linking_off' }]);

    await configure({ linkExistingUsers: true });
    const linked = await signIn('bob-sub');
    expect(linked.status).toBe(200);
    expect((await ok(call('GET', '/auth/me', linked.body.accessToken))).userId).toBe(bob.id);
    // The IdP's name for the account does not overwrite the org's.
    expect((await ok(call('GET', `/users/${bob.id}`, admin))).displayName).toBe('Bob');

    // An unverified email never links, even when linking is on.
    await ok(call('POST', '/users', admin, { email: 'unverified@example.com', displayName: 'U', password: 'a-long-enough-password' }), 201);
    const unverified = await signIn('unverified-sub');
    expect([unverified.status, unverified.body.code]).toEqual([403, 'oidc_email_not_verified']);
  });

  it('never links an identity to a member who holds more than the connection’s writer (R7)', async () => {
    // A user manager with manage_settings writes the connection: the IdP it points to must not be
    // able to sign in as the administrator, who holds every capability, by asserting her email.
    const manager = await login(base, { email: 'idpmanager@test.local', password: 'a-long-enough-password' });
    await configure({ linkExistingUsers: true, mappings: [], allowedEmailDomains: [] }, manager.accessToken);
    idp.accounts.set('admin-sub', { sub: 'admin-sub', email: TEST_ADMIN.email, email_verified: true });
    const res = await signIn('admin-sub');
    expect([res.status, res.body.code, res.body.details]).toEqual([403, 'oidc_link_not_allowed', { reason: 'target_holds_more' }]);
    await configure({ linkExistingUsers: true });
  });

  it('password login switched off for the org: 403 password_login_disabled after a right password, still no oracle for a wrong one', async () => {
    await configure({ linkExistingUsers: true, passwordLogin: false });
    const refused = await call('POST', '/auth/login', undefined, TEST_ADMIN);
    expect([refused.status, refused.body.code]).toEqual([403, 'password_login_disabled']);
    expect(refused.body.details.signInUrl).toBe(oidcPath('start'));
    const wrong = await call('POST', '/auth/login', undefined, { ...TEST_ADMIN, password: 'not-the-password' });
    expect([wrong.status, wrong.body.code]).toEqual([401, 'invalid_credentials']);
    // Sign-in through the IdP still works.
    expect((await signIn('alice-sub')).status).toBe(200);
    // Switching it off needs a working connection.
    const off = await call('PUT', '/auth/oidc/config', admin, {
      issuer: idp.issuer,
      clientId: 'custodian',
      enabled: false,
      passwordLogin: false,
    });
    expect([off.status, off.body.code]).toEqual([400, 'validation_failed']);
    await configure({ linkExistingUsers: true, passwordLogin: true });
    expect((await call('POST', '/auth/login', undefined, TEST_ADMIN)).status).toBe(200);
  });

  it('back-channel logout at the IdP ends the Custodian sessions of that IdP session, and no other', async () => {
    const since = new Date();
    const browser = new TestBrowser();
    const first = await signIn('carol-sub', browser);
    const second = await signIn('carol-sub', browser);
    const bystander = await signIn('alice-sub');
    expect([first.status, second.status, bystander.status]).toEqual([200, 200, 200]);

    // The user signs out at the IdP (RP-initiated logout page, confirmed): the IdP posts the logout token to Custodian.
    const page = await browser.request(`${idp.issuer}/session/end`);
    const html = await page.text();
    const action = /action="([^"]+)"/.exec(html)![1]!;
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)![1]!;
    const confirmed = await browser.request(new URL(action, idp.issuer).toString(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf, logout: 'yes' }).toString(),
    });
    expect(confirmed.status).toBeLessThan(400);

    for (const s of [first, second]) {
      await pollUntil(async () => (await call('GET', '/auth/me', s.body.accessToken)).status === 401, { what: 'access token refused' });
      expect((await call('POST', '/auth/refresh', undefined, { refreshToken: s.body.refreshToken })).status).toBe(401);
    }
    expect((await call('GET', '/auth/me', bystander.body.accessToken)).status).toBe(200);
    const logout = await pollUntil(async () => (await auditRows('auth.oidc_logout', since))[0]);
    expect(logout.event.details).toMatchObject({ issuer: idp.issuer, subject: 'carol-sub', revokedSessions: 2 });
  });

  it('refuses forged and malformed logout tokens with 400, ending nothing', async () => {
    const live = await signIn('alice-sub');
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: idp.issuer,
      aud: 'custodian',
      iat: now,
      exp: now + 120,
      jti: `jti-${now}`,
      sub: 'alice-sub',
      events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
    };
    const post = (body: string, type = 'application/x-www-form-urlencoded'): Promise<Response> =>
      fetch(oidcPath('backchannel-logout'), { method: 'POST', headers: { 'content-type': type }, body });
    const cases: Array<[string, string]> = [
      [await idp.signLogoutToken(claims, { foreignKey: true }), 'signature'],
      [await idp.signLogoutToken({ ...claims, aud: 'another-client' }), 'audience'],
      [await idp.signLogoutToken({ ...claims, iss: 'https://evil.example.com' }), 'issuer'],
      [await idp.signLogoutToken({ ...claims, events: {} }), 'events'],
      [await idp.signLogoutToken({ ...claims, nonce: 'n' }), 'nonce'],
      [await idp.signLogoutToken(claims, { typ: 'JWT' }), 'typ'],
      ['not-a-jwt', 'malformed'],
    ];
    for (const [token, reason] of cases) {
      const res = await post(new URLSearchParams({ logout_token: token }).toString());
      expect([res.status, ((await res.json()) as Json).details?.reason]).toEqual([400, reason]);
    }
    expect((await post(JSON.stringify({ logout_token: 'x' }), 'application/json')).status).toBe(415);
    expect((await call('GET', '/auth/me', live.body.accessToken)).status).toBe(200);
    // The genuine token ends the session.
    const genuine = await post(
      new URLSearchParams({ logout_token: await idp.signLogoutToken({ ...claims, jti: 'jti-genuine' }) }).toString(),
    );
    expect(genuine.status).toBe(200);
    await pollUntil(async () => (await call('GET', '/auth/me', live.body.accessToken)).status === 401);
  });

  it('private_key_jwt: the client authenticates with a key kept sealed, whose public half is served as a JWKS', async () => {
    const pem = clientKey.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const view = await configure({
      clientId: 'custodian-pkjwt',
      clientAuth: 'private_key_jwt',
      privateKeyAlg: 'PS256',
      privateKey: { value: pem },
      clientSecret: undefined,
    });
    expect(view).toMatchObject({ clientAuth: 'private_key_jwt', privateKey: { set: true, source: 'encrypted' } });
    expect(JSON.stringify(view)).not.toContain('PRIVATE KEY');
    const jwks = (await (await fetch(oidcPath('jwks'))).json()) as Json;
    expect(jwks.keys).toEqual([expect.objectContaining({ kty: 'RSA', alg: 'PS256', use: 'sig' })]);
    expect(jwks.keys[0].d).toBeUndefined();
    const res = await signIn('alice-sub');
    expect(res.status).toBe(200);
    await configure({ linkExistingUsers: true });
  });

  it('a connection that is switched off or deleted signs nobody in', async () => {
    await configure({ enabled: false });
    expect((await fetch(oidcPath('start'), { redirect: 'manual' })).status).toBe(404);
    await ok(call('DELETE', '/auth/oidc/config', admin), 204);
    expect((await call('GET', '/auth/oidc/config', admin)).status).toBe(404);
    const secrets = await pg.query('SELECT count(*)::int AS n FROM identity.setting WHERE org_id = $1', [orgId]);
    expect(secrets.rows[0].n).toBe(0);
  });
});
