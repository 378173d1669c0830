import { Client } from 'pg';
import type { QueryRunner } from 'typeorm';
import { decodeJwt } from 'jose';
import { collectRoutes } from '@custodian/platform';
import { ApiKeyExplicitScopes1795400000000 } from '../../apps/identity/src/migrations/1795400000000-api-key-explicit-scopes';
import { apiClient, type ApiResponse, type Json } from '../support/api';
import { login, startTestHost, type TestHost } from '../support/host';
import { pollUntil } from '../support/poll';

const PASSWORD = 'a-long-enough-password';
const KEY_SUBJECT = { subject_token_type: 'urn:custodian:token-type:api_key' };

/**
 * No credential mints a stronger one: an agent (delegated) token cannot create or revoke API keys,
 * change the password or end sessions; a key made with a key carries at most that key's
 * capabilities and lifetime; "no scopes" is never "everything"; every key creation names the
 * credential that made it. Over HTTP on real PostgreSQL, all services in one host.
 */
describe('credentials never mint stronger credentials', () => {
  let t: TestHost;
  let base: string;
  let pg: Client;
  let admin: string;
  let adminCaps: string[];
  let orgId: string;
  const api = apiClient(() => base);

  const createUser = async (email: string, caps: string[]): Promise<string> => {
    const res = await api.call('POST', '/users', admin, { email, displayName: email.split('@')[0], password: PASSWORD });
    expect(res.status).toBe(201);
    await api.ok(api.call('PATCH', `/orgs/${orgId}/members/${res.body.id}`, admin, { capabilities: caps }));
    return res.body.id as string;
  };
  const signIn = async (email: string): Promise<{ accessToken: string; refreshToken: string }> =>
    api.ok(api.call('POST', '/auth/login', undefined, { email, password: PASSWORD }));
  const exchange = (subject: string, extra: Record<string, unknown> = {}): Promise<ApiResponse> =>
    api.call('POST', '/auth/token-exchange', undefined, {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: subject,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      scope: 'data:read',
      client_id: 'probe-agent',
      agent_name: 'Probe',
      ...extra,
    });
  const agentToken = async (subject: string, extra: Record<string, unknown> = {}): Promise<string> =>
    ((await api.ok(exchange(subject, extra))) as Json).access_token as string;
  const expectAgentRefused = (res: { status: number; body: Json }): void => {
    expect({ status: res.status, code: res.body?.code, reason: res.body?.details?.reason }).toEqual({
      status: 403,
      code: 'forbidden',
      reason: 'delegated_credential',
    });
  };
  const auditEvents = async (action: string, where = 'TRUE', params: unknown[] = []): Promise<Json[]> =>
    (
      await pg.query(`SELECT event FROM audit.audit_event WHERE action = $1 AND ${where} ORDER BY occurred_at`, [action, ...params])
    ).rows.map((r: { event: Json }) => r.event);

  const createdEvent = (keyId: string): Promise<Json> =>
    pollUntil(async () => (await auditEvents('identity.api_key.created', 'target_id = $2', [keyId]))[0], {
      what: `creation of ${keyId} audited`,
    });

  beforeAll(async () => {
    t = await startTestHost('credmint');
    base = t.host.url;
    pg = new Client({ connectionString: t.db.url });
    await pg.connect();
    admin = (await login(base)).accessToken;
    const me = await api.ok(api.call('GET', '/auth/me', admin));
    adminCaps = me.capabilities;
    orgId = me.orgId;
  });

  afterAll(async () => {
    await pg?.end();
    await t?.stop();
  });

  describe('a permission manager cannot turn manage_permissions into other capabilities', () => {
    it('creating, replacing or assigning a set that carries capabilities one lacks is refused and audited', async () => {
      const managerId = await createUser('perm-manager@test.local', ['manage_permissions']);
      const manager = (await signIn('perm-manager@test.local')).accessToken;
      const escalate = await api.call('POST', '/permission-sets', manager, { name: 'Escalate', systemCapabilities: ['manage_users'] });
      expect([escalate.status, escalate.body.details?.capabilities]).toEqual([403, ['manage_users']]);
      // A set the manager may create (nothing beyond what they hold) cannot be widened later either.
      const harmless = await api.ok(api.call('POST', '/permission-sets', manager, { name: 'Harmless', objects: {} }), 201);
      const widen = await api.call('PUT', `/permission-sets/${harmless.id}`, manager, {
        name: 'Harmless',
        integrationCapabilities: ['mcp_access'],
      });
      expect(widen.status).toBe(403);
      // Nor can they hand themselves a set an administrator made.
      const strong = await api.ok(api.call('POST', '/permission-sets', admin, { name: 'Strong', systemCapabilities: ['view_audit'] }), 201);
      const assign = await api.call('POST', `/permission-sets/${strong.id}/assignments`, manager, { userId: managerId });
      expect(assign.status).toBe(403);
      const me = await api.ok(api.call('GET', '/auth/me', (await signIn('perm-manager@test.local')).accessToken));
      expect(me.capabilities).not.toContain('view_audit');
      expect(me.capabilities).not.toContain('manage_users');
      await pollUntil(async () => (await auditEvents('identity.capability_grant_denied', 'actor_user_id = $2', [managerId])).length >= 3, {
        what: 'the refusals audited',
      });
    });
  });

  describe('an agent token cannot create or end credentials', () => {
    it('exactly the routes that create, change or end a credential refuse agents (route inventory)', () => {
      const marked = collectRoutes(t.host.app)
        .filter((r) => r.policy?.credentialAdmin === true)
        .map((r) => `${r.method} ${r.path}`)
        .sort();
      expect(marked).toEqual(
        [
          'DELETE /api/v1/api-keys/:id',
          // An agent neither sees nor withdraws its user's OAuth consents (docs/sso.md).
          'DELETE /api/v1/oauth/consents/:id',
          'GET /api/v1/oauth/consents',
          'DELETE /api/v1/sessions/:id',
          'POST /api/v1/api-keys',
          'POST /api/v1/auth/logout',
          'POST /api/v1/auth/logout-all',
          'POST /api/v1/auth/password',
          // SCIM provisioning creates, changes and deactivates accounts: never through an agent (docs/sso.md).
          'DELETE /scim/v2/Groups/:id',
          'DELETE /scim/v2/Users/:id',
          'GET /scim/v2/Groups',
          'GET /scim/v2/Groups/:id',
          'GET /scim/v2/Users',
          'GET /scim/v2/Users/:id',
          'PATCH /scim/v2/Groups/:id',
          'PATCH /scim/v2/Users/:id',
          'POST /scim/v2/Groups',
          'POST /scim/v2/Users',
          'PUT /scim/v2/Groups/:id',
          'PUT /scim/v2/Users/:id',
        ].sort(),
      );
    });

    it('cannot create an API key, with or without scopes, and the refusal is audited with the agent', async () => {
      const userId = await createUser('agent-keys@test.local', ['api_access', 'agent_access']);
      const session = await signIn('agent-keys@test.local');
      const agent = await agentToken(session.accessToken, { scope: 'data:read data:write' });
      expectAgentRefused(await api.call('POST', '/api-keys', agent, { name: 'x' }));
      expectAgentRefused(await api.call('POST', '/api-keys', agent, { name: 'x', scopes: [] }));
      expectAgentRefused(await api.call('POST', '/api-keys', agent, { name: 'x', scopes: ['api_access'] }));
      expect((await pg.query('SELECT count(*)::int AS n FROM identity.api_key WHERE user_id = $1', [userId])).rows[0].n).toBe(0);
      // Identical refusals of one credential are aggregated (ADR 0014): the first is written at once.
      const denied = await pollUntil(async () => (await auditEvents('authz.denied', 'actor_user_id = $2', [userId]))[0], {
        what: 'the refusal audited',
      });
      expect(denied).toMatchObject({
        outcome: 'denied',
        actor: { userId, agent: { clientId: 'probe-agent' } },
        target: { type: 'route', id: 'POST /api/v1/api-keys' },
        details: { layer: 'agent_scope', missingCapabilities: [] },
      });
    });

    it('cannot create an API key when it was exchanged from an API key either', async () => {
      const key = (
        await api.ok(api.call('POST', '/api-keys', admin, { name: 'agent-subject', scopes: ['agent_access', 'api_access'] }), 201)
      ).key as string;
      const agent = await agentToken(key, KEY_SUBJECT);
      expectAgentRefused(await api.call('POST', '/api-keys', agent, { name: 'x' }));
    });

    it('cannot revoke an API key of its user', async () => {
      await createUser('agent-revoke@test.local', ['api_access', 'agent_access']);
      const session = await signIn('agent-revoke@test.local');
      const key = await api.ok(api.call('POST', '/api-keys', session.accessToken, { name: 'keep' }), 201);
      const agent = await agentToken(session.accessToken);
      expectAgentRefused(await api.call('DELETE', `/api-keys/${key.id}`, agent));
      expect((await api.call('GET', '/auth/me', key.key)).status).toBe(200);
    });

    it('cannot change the password, even knowing the current one', async () => {
      await createUser('agent-pw@test.local', ['agent_access']);
      const session = await signIn('agent-pw@test.local');
      const agent = await agentToken(session.accessToken);
      expectAgentRefused(
        await api.call('POST', '/auth/password', agent, { currentPassword: PASSWORD, newPassword: 'taken-over-by-agent' }),
      );
      expect((await api.call('GET', '/auth/me', session.accessToken)).status).toBe(200);
      expect((await api.call('POST', '/auth/login', undefined, { email: 'agent-pw@test.local', password: PASSWORD })).status).toBe(200);
    });

    it('cannot log out everywhere, end a session, or end its user\u2019s session through logout', async () => {
      await createUser('agent-sessions@test.local', ['agent_access']);
      const first = await signIn('agent-sessions@test.local');
      const second = await signIn('agent-sessions@test.local');
      const agent = await agentToken(first.accessToken);
      const sessions = (await api.ok(api.call('GET', '/sessions', first.accessToken))).items as Json[];
      const other = sessions.find((s) => !s.current);
      expectAgentRefused(await api.call('POST', '/auth/logout-all', agent, {}));
      expectAgentRefused(await api.call('DELETE', `/sessions/${other.id}`, agent));
      expectAgentRefused(await api.call('POST', '/auth/logout', agent, {}));
      for (const s of [first, second]) expect((await api.call('GET', '/auth/me', s.accessToken)).status).toBe(200);
      expect((await api.call('POST', '/auth/refresh', undefined, { refreshToken: second.refreshToken })).status).toBe(200);
      // Reading is still fine: the agent may see who it acts for and the user's sessions.
      expect((await api.call('GET', '/auth/me', agent)).status).toBe(200);
      expect((await api.call('GET', '/sessions', agent)).status).toBe(200);
    });
  });

  describe('a key made with a key carries at most that key', () => {
    it('without scopes, the new key gets exactly the creating key\u2019s capabilities, stored explicitly', async () => {
      const parent = await api.ok(api.call('POST', '/api-keys', admin, { name: 'narrow', scopes: ['api_access'] }), 201);
      const child = await api.call('POST', '/api-keys', parent.key, { name: 'child' });
      expect(child.status).toBe(201);
      expect(child.body.scopes).toEqual(['api_access']);
      expect((await pg.query('SELECT scopes FROM identity.api_key WHERE id = $1', [child.body.id])).rows[0].scopes).toEqual(['api_access']);
      expect((await api.ok(api.call('GET', '/auth/me', child.body.key))).capabilities).toEqual(['api_access']);
      expect((await api.call('GET', '/users', child.body.key)).status).toBe(403);
      expect((await api.call('GET', '/roles', child.body.key)).status).toBe(403);
      // Asking for more than the creating key holds is refused, whatever the user holds.
      const wider = await api.call('POST', '/api-keys', parent.key, { name: 'wider', scopes: ['api_access', 'manage_users'] });
      expect(wider.status).toBe(403);
      expect(wider.body.details).toEqual({ scopes: ['manage_users'] });
    });

    it('cannot outlive the creating key: no expiry inherits it, a later one is refused', async () => {
      const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
      const parent = await api.ok(api.call('POST', '/api-keys', admin, { name: 'short', scopes: ['api_access'], expiresAt }), 201);
      const child = await api.ok(api.call('POST', '/api-keys', parent.key, { name: 'child' }), 201);
      expect(child.expiresAt).toBe(parent.expiresAt);
      const later = await api.call('POST', '/api-keys', parent.key, {
        name: 'later',
        expiresAt: new Date(Date.now() + 2 * 86_400_000).toISOString(),
      });
      expect(later.status).toBe(403);
      expect(later.body.code).toBe('forbidden');
      const sooner = await api.ok(
        api.call('POST', '/api-keys', parent.key, { name: 'sooner', expiresAt: new Date(Date.now() + 3_600_000).toISOString() }),
        201,
      );
      expect(Date.parse(sooner.expiresAt)).toBeLessThan(Date.parse(parent.expiresAt));
    });

    it('every key creation is audited with the credential that made it', async () => {
      const parent = await api.ok(api.call('POST', '/api-keys', admin, { name: 'audited-parent', scopes: ['api_access'] }), 201);
      const child = await api.ok(api.call('POST', '/api-keys', parent.key, { name: 'audited-child' }), 201);
      const adminSessionId = decodeJwt(admin).sid as string;
      const fromSession = await createdEvent(parent.id);
      expect(fromSession).toMatchObject({
        actor: { sessionId: adminSessionId },
        details: { createdWith: { kind: 'session', sessionId: adminSessionId } },
      });
      const fromKey = await createdEvent(child.id);
      expect(fromKey).toMatchObject({
        actor: { apiKeyId: parent.id },
        details: { createdWith: { kind: 'api_key', apiKeyId: parent.id }, after: { scopes: ['api_access'] } },
      });
      expect(fromKey.actor.sessionId).toBeUndefined();
    });
  });

  describe('"no scopes" never means "everything"', () => {
    it('a key made from a full session without scopes stores the creator\u2019s capabilities explicitly', async () => {
      const created = await api.ok(api.call('POST', '/api-keys', admin, { name: 'full' }), 201);
      expect(created.scopes).toEqual([...adminCaps].sort());
      expect((await pg.query('SELECT scopes FROM identity.api_key WHERE id = $1', [created.id])).rows[0].scopes).toEqual(
        [...adminCaps].sort(),
      );
      expect((await api.ok(api.call('GET', '/auth/me', created.key))).capabilities).toEqual([...adminCaps].sort());
    });

    it('a stored empty scope list carries no capability, and such a key cannot be exchanged for an agent token', async () => {
      const created = await api.ok(api.call('POST', '/api-keys', admin, { name: 'emptied', scopes: ['agent_access', 'api_access'] }), 201);
      await pg.query(`UPDATE identity.api_key SET scopes = '{}' WHERE id = $1`, [created.id]);
      expect((await api.ok(api.call('GET', '/auth/me', created.key))).capabilities).toEqual([]);
      expect((await api.call('GET', '/users', created.key)).status).toBe(403);
      expect((await exchange(created.key, KEY_SUBJECT)).status).toBe(403);
    });

    it('the upgrade migration writes an old scope-less key\u2019s capabilities explicitly (what it carried before)', async () => {
      const created = await api.ok(api.call('POST', '/api-keys', admin, { name: 'legacy', scopes: ['api_access'] }), 201);
      const revoked = await api.ok(api.call('POST', '/api-keys', admin, { name: 'legacy-revoked', scopes: ['api_access'] }), 201);
      await api.ok(api.call('DELETE', `/api-keys/${revoked.id}`, admin), 204);
      await pg.query(`UPDATE identity.api_key SET scopes = '{}' WHERE id = ANY($1)`, [[created.id, revoked.id]]);
      const client = new Client({ connectionString: t.db.url, options: '-c search_path=identity' });
      await client.connect();
      try {
        const runner = {
          query: async (sql: string, params?: unknown[]) => (await client.query(sql, params)).rows,
        } as unknown as QueryRunner;
        await new ApiKeyExplicitScopes1795400000000().up(runner);
      } finally {
        await client.end();
      }
      const rows = await pg.query('SELECT id, scopes FROM identity.api_key WHERE id = ANY($1)', [[created.id, revoked.id]]);
      const scopes = Object.fromEntries(rows.rows.map((r: { id: string; scopes: string[] }) => [r.id, r.scopes]));
      expect(scopes[created.id]).toEqual([...adminCaps].sort());
      expect(scopes[revoked.id]).toEqual([]); // a revoked key is never used again: left as it is
      expect((await api.ok(api.call('GET', '/auth/me', created.key))).capabilities).toEqual([...adminCaps].sort());
    });
  });

  describe('a password set for someone else never yields a stronger session', () => {
    it('a user manager (or a manage_users key) cannot set the password of a user who holds more than they do', async () => {
      await createUser('pw-manager@test.local', ['manage_users']);
      const strongerId = await createUser('pw-stronger@test.local', ['manage_users', 'manage_roles']);
      const weakerId = await createUser('pw-weaker@test.local', []);
      const manager = (await signIn('pw-manager@test.local')).accessToken;
      const stronger = await signIn('pw-stronger@test.local');
      const refused = await api.call('PATCH', `/users/${strongerId}`, manager, { password: 'taken-over-password' });
      expect(refused.status).toBe(403);
      expect(refused.body).toMatchObject({ code: 'forbidden', details: { reason: 'target_holds_more', capabilities: ['manage_roles'] } });
      // The admin's key scoped to manage_users is refused the same way, though the admin holds everything.
      const key = (await api.ok(api.call('POST', '/api-keys', admin, { name: 'reset', scopes: ['manage_users'] }), 201)).key as string;
      expect((await api.call('PATCH', `/users/${strongerId}`, key, { password: 'taken-over-password' })).status).toBe(403);
      expect(
        (await api.call('POST', '/auth/login', undefined, { email: 'pw-stronger@test.local', password: 'taken-over-password' })).status,
      ).toBe(401);
      expect((await api.call('GET', '/auth/me', stronger.accessToken)).status).toBe(200);
      await pollUntil(async () => (await auditEvents('identity.user.password_reset_denied', 'target_id = $2', [strongerId])).length >= 2, {
        what: 'both refusals audited',
      });
      // Deactivated first (which a user manager may do), the stronger user still holds what they hold.
      expect((await api.call('PATCH', `/users/${strongerId}`, manager, { active: false })).status).toBe(200);
      expect((await api.call('PATCH', `/users/${strongerId}`, manager, { active: true, password: 'taken-over-password' })).status).toBe(
        403,
      );
      // A key cannot set its own user's password either: that would turn the key into a full session.
      const adminId = (await api.ok(api.call('GET', '/auth/me', admin))).userId as string;
      expect((await api.call('PATCH', `/users/${adminId}`, key, { password: 'taken-over-password' })).status).toBe(403);
      // Someone who holds no more than the manager: allowed, as before.
      expect((await api.call('PATCH', `/users/${weakerId}`, manager, { password: 'reset-by-manager' })).status).toBe(200);
      expect(
        (await api.call('POST', '/auth/login', undefined, { email: 'pw-weaker@test.local', password: 'reset-by-manager' })).status,
      ).toBe(200);
    });
  });

  describe('token exchange from an API key never exceeds the key', () => {
    it('the agent token carries akid and at most the key\u2019s capabilities, and a key without agent_access cannot delegate', async () => {
      const key = await api.ok(api.call('POST', '/api-keys', admin, { name: 'delegating', scopes: ['agent_access'] }), 201);
      const noAgent = await api.ok(
        api.call('POST', '/api-keys', admin, { name: 'not-delegating', scopes: ['api_access', 'manage_users'] }),
        201,
      );
      const token = await agentToken(key.key, { ...KEY_SUBJECT, scope: 'data:read data:write' });
      expect(decodeJwt(token)).toMatchObject({ akid: key.id, act: { sub: 'probe-agent' } });
      const me = await api.ok(api.call('GET', '/auth/me', token));
      expect(me).toMatchObject({ apiKeyId: key.id, apiKeyScopes: ['agent_access'], agent: { clientId: 'probe-agent' } });
      expect(me.capabilities).toEqual(['agent_access']);
      expect((await exchange(noAgent.key, KEY_SUBJECT)).status).toBe(403);
      // Through a key made with a key without scopes: still no more than the first key (never mcp_access).
      const parent = await api.ok(api.call('POST', '/api-keys', admin, { name: 'parent', scopes: ['agent_access', 'api_access'] }), 201);
      const child = await api.ok(api.call('POST', '/api-keys', parent.key, { name: 'child' }), 201);
      const viaChild = await agentToken(child.key, KEY_SUBJECT);
      expect((await api.ok(api.call('GET', '/auth/me', viaChild))).capabilities).toEqual(['agent_access', 'api_access']);
    });
  });
});
