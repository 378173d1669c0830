import { Controller, Get, Module } from '@nestjs/common';
import { InProcessBus, Public, collectRoutes, loadConfig, startHost, type RunningHost } from '@custodian/platform';
import { Client } from 'pg';
import pino from 'pino';
import { pollUntil } from '../support/poll';
import { TEST_ADMIN, login, startTestHost, type TestHost } from '../support/host';

/**
 * The five service modules in one process on real PostgreSQL: deny-by-default routing, the
 * login → cross-service → logout path, problem+json errors, input limits and the audit outbox.
 */
describe('all services in one host', () => {
  let t: TestHost;
  let base: string;
  let pg: Client;

  beforeAll(async () => {
    t = await startTestHost('host');
    base = t.host.url;
    pg = new Client({ connectionString: t.db.url });
    await pg.connect();
  });

  afterAll(async () => {
    await pg?.end();
    await t?.stop();
  });

  const post = (path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const get = (path: string, token?: string): Promise<Response> =>
    fetch(`${base}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

  describe('routes', () => {
    it('every route of every service declares a policy or is explicitly public', () => {
      const routes = collectRoutes(t.host.app);
      expect(routes.length).toBeGreaterThanOrEqual(7);
      expect(routes.filter((r) => r.access === 'undeclared')).toEqual([]);
    });

    it('the public routes are exactly the ones meant to be public', () => {
      const publicRoutes = collectRoutes(t.host.app)
        .filter((r) => r.access === 'public')
        .map((r) => `${r.method} ${r.path}`)
        .sort();
      expect(publicRoutes).toEqual([
        // The OAuth 2.1 server for MCP clients (oidc-provider under /oauth and its RFC 8414 metadata):
        // each endpoint authenticates what it needs itself — client, PKCE verifier, refresh token, password.
        'ALL /oauth',
        'ALL /oauth/*path',
        'DELETE /mcp',
        'GET /.well-known/jwks.json',
        'GET /.well-known/oauth-authorization-server',
        'GET /.well-known/oauth-authorization-server/oauth',
        'GET /.well-known/oauth-protected-resource',
        'GET /.well-known/oauth-protected-resource/mcp',
        // OIDC sign-in of an org (docs/sso.md): the sealed login cookie, the IdP's signed ID token and
        // logout token are the credentials; jwks is the public half of the private_key_jwt key.
        'GET /api/v1/auth/oidc/:org/callback',
        'GET /api/v1/auth/oidc/:org/jwks',
        'GET /api/v1/auth/oidc/:org/start',
        // Does an org (by id or email domain) sign in with OIDC: a yes/no and the start URL, nothing else.
        'GET /api/v1/auth/oidc/discover',
        // The API's shape (OpenAPI 3.1) and its reference page: no data, each route's declared policy.
        'GET /api/v1/docs',
        'GET /api/v1/openapi.json',
        // The console's static files: no data in them, the app signs in against the API like any client.
        'GET /console',
        'GET /console/*path',
        'GET /health/live',
        'GET /health/ready',
        'GET /mcp',
        'GET /metrics',
        'GET /oauth/interaction/:uid',
        // Sign in with the org's IdP from that page: starts only for the interaction this browser is in.
        'GET /oauth/interaction/:uid/idp',
        'POST /api/v1/auth/login',
        'POST /api/v1/auth/oidc/:org/backchannel-logout',
        'POST /api/v1/auth/refresh',
        'POST /api/v1/auth/token-exchange',
        // The MCP endpoint authenticates itself (its audience, its RFC 9728 challenge): McpController.
        'POST /mcp',
        // The sign-in and consent page of an authorization request: the password is the credential.
        'POST /oauth/interaction/:uid',
      ]);
    });
  });

  it('is ready, with every service database and the bus checked', async () => {
    const res = await get('/health/ready');
    expect(res.status).toBe(200);
    expect(((await res.json()) as { checks: unknown }).checks).toEqual({
      bus: 'ok',
      'database:identity': 'ok',
      'database:objects': 'ok',
      'database:agent-gateway': 'ok',
      'database:approvals': 'ok',
      'database:audit': 'ok',
    });
  });

  describe('login and the cross-service path', () => {
    it('logs in, is known to objects through identity, and is refused everywhere after logout', async () => {
      const { accessToken } = await login(base);
      const me = await get('/api/v1/auth/me', accessToken);
      expect(me.status).toBe(200);
      expect(await me.json()).toMatchObject({
        email: TEST_ADMIN.email,
        capabilities: expect.arrayContaining(['manage_users', 'view_audit']),
      });

      const objects = await get('/api/v1/meta/objects', accessToken);
      expect(objects.status).toBe(200);
      expect(await objects.json()).toEqual({ items: [], nextCursor: null, policyVersion: 1 });

      expect((await post('/api/v1/auth/logout', {}, { authorization: `Bearer ${accessToken}` })).status).toBe(204);
      for (const path of ['/api/v1/meta/objects', '/api/v1/auth/me']) {
        const after = await get(path, accessToken);
        expect(after.status).toBe(401);
        expect(after.headers.get('content-type')).toMatch(/application\/problem\+json/);
      }
    });

    it('answers a wrong password and an unknown user the same way', async () => {
      const wrong = await post('/api/v1/auth/login', { email: TEST_ADMIN.email, password: 'not-the-password' });
      const unknown = await post('/api/v1/auth/login', { email: 'nobody@test.local', password: 'not-the-password' });
      expect(wrong.status).toBe(401);
      expect(unknown.status).toBe(401);
      const strip = (b: Record<string, unknown>): Record<string, unknown> => ({ ...b, requestId: undefined });
      expect(strip((await wrong.json()) as Record<string, unknown>)).toEqual(strip((await unknown.json()) as Record<string, unknown>));
    });

    it('refuses a missing, malformed or forged bearer token with 401', async () => {
      expect((await get('/api/v1/meta/objects')).status).toBe(401);
      expect((await get('/api/v1/meta/objects', 'not-a-jwt')).status).toBe(401);
      const { accessToken } = await login(base);
      const [h, p] = accessToken.split('.');
      const forged = `${h}.${p}.${Buffer.from('x'.repeat(64)).toString('base64url')}`;
      expect((await get('/api/v1/meta/objects', forged)).status).toBe(401);
    });
  });

  describe('errors are problem documents with codes', () => {
    it.each([
      ['malformed JSON', '{"email":', 400, 'malformed_json'],
      ['a prototype-pollution key', '{"__proto__":{"admin":true},"email":"a@b.c","password":"x"}', 400, 'forbidden_key'],
      ['a nested constructor key', '{"email":"a@b.c","password":"x","x":[{"constructor":{}}]}', 400, 'forbidden_key'],
      ['an unknown field', JSON.stringify({ email: 'a@b.c', password: 'x', admin: true }), 400, 'validation_failed'],
      ['a wrong type', JSON.stringify({ email: 'a@b.c', password: 5 }), 400, 'validation_failed'],
      ['an oversized body', JSON.stringify({ email: 'a@b.c', password: 'x'.repeat(2 * 1024 * 1024) }), 413, 'payload_too_large'],
    ])('%s is refused', async (_what, body, status, code) => {
      const res = await post('/api/v1/auth/login', body);
      expect(res.status).toBe(status);
      expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
      const problem = await res.json();
      expect(problem).toMatchObject({ status, code, type: expect.stringContaining(code), requestId: expect.any(String) });
      expect(({} as Record<string, unknown>).admin).toBeUndefined();
    });

    it('echoes a plain caller request id and replaces an unsafe one', async () => {
      const ok = await fetch(`${base}/nope`, { headers: { 'x-request-id': 'trace-123' } });
      expect(ok.status).toBe(404);
      expect(ok.headers.get('x-request-id')).toBe('trace-123');
      expect(((await ok.json()) as { requestId: string }).requestId).toBe('trace-123');
      const unsafe = await fetch(`${base}/nope`, { headers: { 'x-request-id': 'a b<script>' } });
      expect(unsafe.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('serves Prometheus metrics, principal cache included', async () => {
      const { accessToken } = await login(base);
      expect((await get('/api/v1/auth/me', accessToken)).status).toBe(200);
      expect((await get('/api/v1/auth/me', accessToken)).status).toBe(200);
      const res = await get('/metrics');
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).toContain('process_cpu_user_seconds_total');
      expect(text).toMatch(/custodian_principal_cache_entries\{[^}]*\} [1-9]/);
      expect(text).toMatch(/custodian_principal_cache_lookups\{[^}]*result="hit"[^}]*\} [1-9]/);
    });

    it('takes Custodian-Policy-Version as a minimum version and refuses a malformed one (400)', async () => {
      const { accessToken } = await login(base);
      const me = async (version: string): Promise<Response> =>
        fetch(`${base}/api/v1/auth/me`, { headers: { authorization: `Bearer ${accessToken}`, 'custodian-policy-version': version } });
      const current = ((await (await get('/api/v1/auth/me', accessToken)).json()) as { policyVersion: number }).policyVersion;
      const fresh = await me(String(current));
      expect(fresh.status).toBe(200);
      expect(((await fresh.json()) as { policyVersion: number }).policyVersion).toBe(current);
      for (const bad of ['-1', 'abc', '1.5', '9'.repeat(16)]) {
        const res = await me(bad);
        expect([bad, res.status, ((await res.json()) as { code: string }).code]).toEqual([bad, 400, 'validation_failed']);
      }
    });
  });

  describe('audit through the outbox', () => {
    it('relays every event to the audit store exactly once', async () => {
      await login(base);
      await post('/api/v1/auth/login', { email: TEST_ADMIN.email, password: 'wrong-password' });
      const rows = await pollUntil(
        async () => {
          const r = await pg.query<{ action: string }>(`SELECT action FROM audit.audit_event`);
          const actions = r.rows.map((x) => x.action);
          return ['identity.bootstrapped', 'auth.login', 'auth.login_failed', 'auth.logout'].every((a) => actions.includes(a))
            ? r.rows
            : undefined;
        },
        { what: 'audit rows' },
      );
      expect(rows.length).toBeGreaterThan(0);
      const outbox = await pg.query(`SELECT count(*)::int AS n FROM identity.outbox`);
      const stored = await pg.query(`SELECT count(*)::int AS n FROM audit.audit_event WHERE service = 'identity'`);
      await pollUntil(
        async () => (await pg.query(`SELECT count(*)::int AS n FROM identity.outbox WHERE published_at IS NULL`)).rows[0].n === 0,
        {
          what: 'outbox drained',
        },
      );
      expect(stored.rows[0].n).toBeLessThanOrEqual(outbox.rows[0].n);
      const dupes = await pg.query(`SELECT id FROM audit.audit_event GROUP BY id HAVING count(*) > 1`);
      expect(dupes.rows).toEqual([]);
    });

    it('A1: when the audit event cannot be written, the change fails with 503 and nothing is committed', async () => {
      const sessionsBefore = (await pg.query(`SELECT count(*)::int AS n FROM identity.session`)).rows[0].n;
      await pg.query(`REVOKE INSERT ON identity.outbox FROM custodian_identity`);
      try {
        const res = await post('/api/v1/auth/login', TEST_ADMIN);
        expect(res.status).toBe(503);
        expect(res.headers.get('retry-after')).toBe('1');
        expect(((await res.json()) as { code: string }).code).toBe('service_unavailable');
      } finally {
        await pg.query(`GRANT INSERT ON identity.outbox TO custodian_identity`);
      }
      const sessionsAfter = (await pg.query(`SELECT count(*)::int AS n FROM identity.session`)).rows[0].n;
      expect(sessionsAfter).toBe(sessionsBefore);
      expect((await post('/api/v1/auth/login', TEST_ADMIN)).status).toBe(200);
    });
  });
});

@Controller('forgotten')
class ForgottenController {
  @Get()
  secret(): { leaked: true } {
    return { leaked: true };
  }
}

@Controller('crashing')
class CrashingController {
  @Public()
  @Get()
  crash(): never {
    throw new Error('password=hunter2 at db.internal:5432');
  }
}

@Module({ controllers: [ForgottenController, CrashingController] })
class ForgottenModule {}

describe('deny by default', () => {
  let host: RunningHost;

  beforeAll(async () => {
    const logger = pino({ level: 'silent' });
    const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent' }, 'all-in-one');
    host = await startHost({ config, logger, bus: new InProcessBus(logger), databaseUrl: 'postgres://unused', modules: [ForgottenModule] });
  });

  afterAll(async () => {
    await host.stop();
  });

  it('the inventory flags a route without a declared policy', () => {
    expect(collectRoutes(host.app).filter((r) => r.access === 'undeclared')).toEqual([
      expect.objectContaining({ controller: 'ForgottenController', handler: 'secret', path: '/forgotten', method: 'GET' }),
    ]);
  });

  it('an unknown error becomes a generic 500 problem with a request id; the detail stays in the log', async () => {
    const res = await fetch(`${host.url}/crashing`);
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).not.toContain('hunter2');
    expect(JSON.parse(text)).toMatchObject({ code: 'internal_error', status: 500, requestId: res.headers.get('x-request-id') });
  });

  it('and the guard refuses it at run time, even to an anonymous caller', async () => {
    const res = await fetch(`${host.url}/forgotten`);
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: 'forbidden' });
  });
});
