import { Client } from 'pg';
import { pollUntil } from '../support/poll';
import { apiClient } from '../support/api';
import { TEST_ADMIN, login, startTestHost, type TestHost } from '../support/host';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are asserted field by field
type Json = any;

/**
 * The directory over REST on real PostgreSQL: users, orgs and members, the role tree (closure),
 * groups, permission sets and assignments; capability checks (403), the tenant wall (404), bounded
 * lists, structured 4xx, audit with before/after, and policy-version bumps.
 */
describe('identity directory', () => {
  let t: TestHost;
  let base: string;
  let pg: Client;
  let admin: string;
  let orgId: string;

  const { call } = apiClient(() => base);
  const policyVersion = async (): Promise<number> =>
    Number((await pg.query('SELECT policy_version FROM identity.organization WHERE id = $1', [orgId])).rows[0].policy_version);
  const auditRow = (action: string, targetId?: string): Promise<Json> =>
    pollUntil(
      async () => {
        const r = await pg.query(
          `SELECT * FROM audit.audit_event WHERE action = $1 ${targetId ? `AND target_id = $2` : ''} ORDER BY occurred_at DESC LIMIT 1`,
          targetId ? [action, targetId] : [action],
        );
        return r.rows[0];
      },
      { what: `audit ${action}` },
    );

  beforeAll(async () => {
    t = await startTestHost('iddir');
    base = t.host.url;
    pg = new Client({ connectionString: t.db.url });
    await pg.connect();
    const session = await login(base);
    admin = session.accessToken;
    orgId = session.orgId;
  });

  afterAll(async () => {
    await pg?.end();
    await t?.stop();
  });

  const createUser = async (email: string, extra: Record<string, unknown> = {}): Promise<Json> => {
    const res = await call('POST', '/users', admin, {
      email,
      displayName: email.split('@')[0],
      password: 'a-long-enough-password',
      ...extra,
    });
    expect(res.status).toBe(201);
    return res.body;
  };

  it('creates users; the audit row has before/after and never the password or its hash', async () => {
    const v0 = await policyVersion();
    const user = await createUser('alice@test.local');
    // keyed `id` like every resource (ADR 0018)
    expect(user).toMatchObject({ id: expect.any(String), email: 'alice@test.local', active: true, roleId: null, capabilities: [] });
    expect(user).not.toHaveProperty('userId');
    expect(await policyVersion()).toBe(v0 + 1);
    const dup = await call('POST', '/users', admin, { email: 'ALICE@test.local', displayName: 'A', password: 'a-long-enough-password' });
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe('conflict');
    const row = await auditRow('identity.user.created', user.id);
    const text = JSON.stringify(row);
    expect(text).not.toContain('a-long-enough-password');
    expect(text).not.toContain('$argon2');
    expect(row.outcome).toBe('success');
  });

  it.each([
    ['an unknown field', { email: 'x@test.local', displayName: 'x', password: 'a-long-enough-password', admin: true }],
    ['a short password', { email: 'x@test.local', displayName: 'x', password: 'short' }],
    ['a bad email', { email: 'not-an-email', displayName: 'x', password: 'a-long-enough-password' }],
    ['a control character in a name', { email: 'x@test.local', displayName: 'x\u0000y', password: 'a-long-enough-password' }],
  ])('refuses %s with a structured 400', async (_what, body) => {
    const res = await call('POST', '/users', admin, body);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'validation_failed', details: { issues: expect.any(Array) } });
  });

  it('bounds list endpoints', async () => {
    const deep = Buffer.from('offset:10001').toString('base64url');
    for (const q of ['limit=201', 'limit=0', 'offset=1', `cursor=${deep}`, 'cursor=nonsense', 'limit=abc', 'sort=email']) {
      const res = await call('GET', `/users?${q}`, admin);
      expect([q, res.status, res.body.code]).toEqual([q, 400, 'validation_failed']);
    }
    // One list shape everywhere (ADR 0018): {items, nextCursor}, nextCursor null on the last page.
    const page = await call('GET', '/users?limit=1', admin);
    expect(page.status).toBe(200);
    expect(Object.keys(page.body).sort()).toEqual(['items', 'nextCursor']);
    expect(page.body.items).toHaveLength(1);
    expect(page.body.nextCursor).toEqual(expect.any(String));
    const next = await call('GET', `/users?limit=1&cursor=${page.body.nextCursor}`, admin);
    expect(next.status).toBe(200);
    expect(next.body.items[0].id).not.toBe(page.body.items[0].id);
    const all = await call('GET', '/users?limit=200', admin);
    expect(all.body.nextCursor).toBeNull();
  });

  it('keeps the role tree in a closure table; cycles are refused; the snapshot lists ancestors nearest first', async () => {
    const ceo = (await call('POST', '/roles', admin, { name: 'CEO' })).body;
    const vp = (await call('POST', '/roles', admin, { name: 'VP', parentId: ceo.id })).body;
    const rep = (await call('POST', '/roles', admin, { name: 'Rep', parentId: vp.id })).body;
    const other = (await call('POST', '/roles', admin, { name: 'Other' })).body;
    expect((await call('PATCH', `/roles/${ceo.id}`, admin, { parentId: rep.id })).status).toBe(409);
    expect((await call('PATCH', `/roles/${ceo.id}`, admin, { parentId: ceo.id })).status).toBe(409);
    // Move VP (with Rep below it) under Other: the closure follows.
    expect((await call('PATCH', `/roles/${vp.id}`, admin, { parentId: other.id })).status).toBe(200);
    const closure = await pg.query('SELECT ancestor_id, depth FROM identity.role_closure WHERE descendant_id = $1 ORDER BY depth', [
      rep.id,
    ]);
    expect(closure.rows.map((r) => [r.ancestor_id, r.depth])).toEqual([
      [rep.id, 0],
      [vp.id, 1],
      [other.id, 2],
    ]);
    expect((await call('DELETE', `/roles/${vp.id}`, admin)).status).toBe(409); // has a child

    const bob = await createUser('bob@test.local', { roleId: rep.id });
    const bobLogin = await login(base, { email: 'bob@test.local', password: 'a-long-enough-password' });
    const me = await call('GET', '/auth/me', bobLogin.accessToken);
    expect(me.body).toMatchObject({ userId: bob.id, roleId: rep.id, ancestorRoleIds: [vp.id, other.id] });
    const updated = await auditRow('identity.role.updated', vp.id);
    expect(updated.event.details.before.parentId).toBe(ceo.id);
    expect(updated.event.details.after.parentId).toBe(other.id);
  });

  it('merges permission sets assigned directly and through groups into the snapshot', async () => {
    const carol = await createUser('carol@test.local');
    const direct = await call('POST', '/permission-sets', admin, {
      name: 'Sales read',
      objects: { account: { allowRead: true } },
      integrationCapabilities: ['api_access'],
    });
    expect(direct.status).toBe(201);
    const viaGroup = await call('POST', '/permission-sets', admin, { name: 'Audit', systemCapabilities: ['view_audit'] });
    const invalid = await call('POST', '/permission-sets', admin, { name: 'Bad', objects: { account: { allowEverything: true } } });
    expect(invalid.status).toBe(400);
    const group = (await call('POST', '/groups', admin, { name: 'Auditors' })).body;
    // Adding a group member and adding an assignment answer alike (ADR 0018): 201 with the link
    // naming both ends, 409 `conflict` when it exists already.
    const joined = await call('POST', `/groups/${group.id}/members`, admin, { userId: carol.id });
    expect([joined.status, joined.body]).toEqual([
      201,
      { groupId: group.id, userId: carol.id, email: 'carol@test.local', displayName: 'carol', addedAt: expect.any(String) },
    ]);
    const assigned = await call('POST', `/permission-sets/${direct.body.id}/assignments`, admin, { userId: carol.id });
    expect([assigned.status, assigned.body]).toEqual([
      201,
      { id: expect.any(String), permissionSetId: direct.body.id, userId: carol.id, groupId: null, createdAt: expect.any(String) },
    ]);
    const again = [
      await call('POST', `/groups/${group.id}/members`, admin, { userId: carol.id }),
      await call('POST', `/permission-sets/${direct.body.id}/assignments`, admin, { userId: carol.id }),
    ];
    expect(again.map((r) => [r.status, r.body.code])).toEqual([
      [409, 'conflict'],
      [409, 'conflict'],
    ]);
    const v = await policyVersion();
    expect((await call('POST', `/permission-sets/${viaGroup.body.id}/assignments`, admin, { groupId: group.id })).status).toBe(201);
    expect(await policyVersion()).toBe(v + 1);

    const session = await login(base, { email: 'carol@test.local', password: 'a-long-enough-password' });
    const me = (await call('GET', '/auth/me', session.accessToken)).body;
    expect(me.groupIds).toEqual([group.id]);
    expect(me.capabilities).toEqual(['api_access', 'view_audit']);
    expect(me.permissionSets.map((s: Json) => s.name).sort()).toEqual(['Audit', 'Sales read']);
    expect(me.policyVersion).toBe(v + 1);

    // A user without manage_users / manage_roles / manage_permissions is refused, and the denial audited.
    for (const [method, path] of [
      ['GET', '/users'],
      ['POST', '/roles'],
      ['GET', '/permission-sets'],
      ['GET', '/groups'],
    ]) {
      const res = await call(method, path, session.accessToken, method === 'POST' ? { name: 'x' } : undefined);
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('forbidden');
    }
    await pollUntil(
      async () =>
        (await pg.query(`SELECT 1 FROM audit.audit_event WHERE action = 'authz.denied' AND actor_user_id = $1`, [carol.id])).rowCount,
      { what: 'denial audited' },
    );
  });

  it('answers ids of another org with 404 (R1)', async () => {
    const other = (await call('POST', '/orgs', admin, { name: 'Other org' })).body;
    expect(other.id).toBeDefined();
    // Switch into the new org and create things there.
    const inOther = await login(base, { ...TEST_ADMIN, orgId: other.id } as typeof TEST_ADMIN);
    const foreignRole = (await call('POST', '/roles', inOther.accessToken, { name: 'Foreign' })).body;
    const foreignGroup = (await call('POST', '/groups', inOther.accessToken, { name: 'Foreign' })).body;
    const foreignSet = (await call('POST', '/permission-sets', inOther.accessToken, { name: 'Foreign' })).body;
    const foreignUser = (
      await call('POST', '/users', inOther.accessToken, {
        email: 'dave@other.local',
        displayName: 'Dave',
        password: 'a-long-enough-password',
      })
    ).body;
    for (const path of [
      `/roles/${foreignRole.id}`,
      `/groups/${foreignGroup.id}`,
      `/permission-sets/${foreignSet.id}`,
      `/users/${foreignUser.id}`,
      `/orgs/${other.id}`,
      `/orgs/${other.id}/members`,
      '/roles/not-a-uuid',
    ]) {
      const res = await call('GET', path, admin);
      expect(res.status).toBe(404);
    }
    expect((await call('PATCH', `/users/${foreignUser.id}`, admin, { active: false })).status).toBe(404);
    expect((await call('DELETE', `/groups/${foreignGroup.id}`, admin)).status).toBe(404);
    const localGroup = (await call('POST', '/groups', admin, { name: 'Local' })).body;
    expect((await call('POST', `/groups/${localGroup.id}/members`, admin, { userId: foreignUser.id })).status).toBe(404);
    expect((await call('POST', `/permission-sets/${foreignSet.id}/assignments`, admin, { groupId: localGroup.id })).status).toBe(404);
    const mine = await call('GET', '/orgs', admin);
    expect(mine.body.items.map((o: Json) => o.id).sort()).toEqual([orgId, other.id].sort());
  });

  it('deactivating a user ends their sessions at once (I7) and is refused for a user of another org too', async () => {
    const erin = await createUser('erin@test.local');
    const session = await login(base, { email: 'erin@test.local', password: 'a-long-enough-password' });
    expect((await call('GET', '/auth/me', session.accessToken)).status).toBe(200);
    expect((await call('PATCH', `/users/${erin.id}`, admin, { active: false })).status).toBe(200);
    expect((await call('GET', '/auth/me', session.accessToken)).status).toBe(401);
    expect((await call('GET', '/meta/objects', session.accessToken)).status).toBe(401);
    const refresh = await call('POST', '/auth/refresh', undefined, { refreshToken: session.refreshToken });
    expect(refresh.status).toBe(401);
    const revoked = await pg.query('SELECT count(*)::int AS n FROM identity.session WHERE user_id = $1 AND revoked_at IS NULL', [erin.id]);
    expect(revoked.rows[0].n).toBe(0);
  });

  it('removes a member from the org with their group memberships; the last user manager stays', async () => {
    const frank = await createUser('frank@test.local');
    const group = (await call('POST', '/groups', admin, { name: 'Temp' })).body;
    await call('POST', `/groups/${group.id}/members`, admin, { userId: frank.id });
    expect((await call('DELETE', `/users/${frank.id}`, admin)).status).toBe(204);
    expect((await call('GET', `/users/${frank.id}`, admin)).status).toBe(404);
    expect((await call('GET', `/groups/${group.id}/members`, admin)).body.items).toEqual([]);
    const me = (await call('GET', '/auth/me', admin)).body;
    expect((await call('DELETE', `/orgs/${orgId}/members/${me.userId}`, admin)).status).toBe(409);
  });

  it('granting direct capabilities needs manage_permissions and never exceeds the granter', async () => {
    const gina = await createUser('gina@test.local');
    const ok = await call('PATCH', `/orgs/${orgId}/members/${gina.id}`, admin, { capabilities: ['manage_users'] });
    expect(ok.status).toBe(200);
    const session = await login(base, { email: 'gina@test.local', password: 'a-long-enough-password' });
    const hank = (
      await call('POST', '/users', session.accessToken, {
        email: 'hank@test.local',
        displayName: 'Hank',
        password: 'a-long-enough-password',
      })
    ).body;
    const escalate = await call('PATCH', `/orgs/${orgId}/members/${hank.id}`, session.accessToken, { capabilities: ['manage_users'] });
    expect(escalate.status).toBe(403);
    await pollUntil(
      async () =>
        (
          await pg.query(`SELECT 1 FROM audit.audit_event WHERE action = 'identity.capability_grant_denied' AND actor_user_id = $1`, [
            gina.id,
          ])
        ).rowCount,
      { what: 'escalation attempt audited' },
    );
  });
});
