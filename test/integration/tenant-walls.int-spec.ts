import { Client } from 'pg';
import { pollUntil } from '../support/poll';
import { apiClient, type Json } from '../support/api';
import { login, startTestHost, type TestHost } from '../support/host';

const PASSWORD = 'a-long-enough-password';

/**
 * The wall between organizations in membership: a user's profile and kill switch belong to the org
 * that created them (their home org); another org can only invite them, and the invited user
 * decides. Invitation answers are the same whether the email exists elsewhere or not.
 *
 * Org A is the installation's first org (its admin created `vic`); org B has its own user manager
 * `mallory`, who never belongs to A.
 */
describe('tenant walls: home org, invitations', () => {
  let t: TestHost;
  let base: string;
  let pg: Client;
  let adminA: string;
  let orgA: string;
  let orgB: string;
  let adminInB: string;
  let mallory: string;
  let vic: { id: string; token: string };

  const { call, ok } = apiClient(() => base);
  const memberships = async (userId: string): Promise<string[]> =>
    (await pg.query('SELECT org_id FROM identity.membership WHERE user_id = $1 ORDER BY org_id', [userId])).rows.map((r) => r.org_id);
  const auditRows = (action: string, orgId: string, targetId?: string): Promise<Json[]> =>
    pollUntil(
      async () => {
        const r = await pg.query(
          `SELECT * FROM audit.audit_event WHERE action = $1 AND org_id = $2 ${targetId ? 'AND target_id = $3' : ''} ORDER BY occurred_at`,
          targetId ? [action, orgId, targetId] : [action, orgId],
        );
        return r.rows.length > 0 ? r.rows : undefined;
      },
      { what: `audit ${action}` },
    );
  /** An invitation answer without the values that differ per call (ids, times, the address itself). */
  const shapeOf = (body: Json): Json => ({
    ...body,
    id: typeof body.id,
    email: typeof body.email,
    createdAt: typeof body.createdAt,
    expiresAt: typeof body.expiresAt,
  });

  beforeAll(async () => {
    t = await startTestHost('walls');
    base = t.host.url;
    pg = new Client({ connectionString: t.db.url });
    await pg.connect();
    const a = await login(base);
    adminA = a.accessToken;
    orgA = a.orgId;
    const created = await ok(call('POST', '/users', adminA, { email: 'vic@a.test', displayName: 'Vic', password: PASSWORD }), 201);
    await ok(call('PATCH', `/orgs/${orgA}/members/${created.id}`, adminA, { capabilities: ['api_access'] }));
    vic = { id: created.id, token: (await login(base, { email: 'vic@a.test', password: PASSWORD })).accessToken };

    // Org B, with a user manager of its own who is not a member of A.
    orgB = (await ok(call('POST', '/orgs', adminA, { name: 'Org B' }), 201)).id;
    adminInB = (await login(base, { email: 'admin@test.local', password: 'correct-horse-battery-staple', orgId: orgB } as never))
      .accessToken;
    const m = await ok(call('POST', '/users', adminInB, { email: 'mallory@b.test', displayName: 'Mallory', password: PASSWORD }), 201);
    await ok(call('PATCH', `/orgs/${orgB}/members/${m.id}`, adminInB, { capabilities: ['manage_users', 'manage_permissions'] }));
    mallory = (await login(base, { email: 'mallory@b.test', password: PASSWORD })).accessToken;
  }, 60_000);

  afterAll(async () => {
    await pg?.end();
    await t?.stop();
  });

  it('adding a user of another org by email makes a pending invitation, not a membership', async () => {
    const res = await call('POST', `/orgs/${orgB}/members`, mallory, { email: 'vic@a.test' });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'invited', orgId: orgB, email: 'vic@a.test', roleId: null, capabilities: [] });
    expect(await memberships(vic.id)).toEqual([orgA]);
    const listed = await ok(call('GET', `/orgs/${orgB}/invitations`, mallory));
    expect(listed.items.map((i: Json) => i.id)).toContain(res.body.id);
    const [row] = await auditRows('identity.invitation.created', orgB);
    expect(row.outcome).toBe('success');
    expect(JSON.stringify(row.event.details)).not.toContain(vic.id);
  });

  it('answers the same for an unknown email, an email of another org, and POST /users with a taken email', async () => {
    const unknown = await call('POST', `/orgs/${orgB}/members`, mallory, { email: 'nobody-at-all@nowhere.test' });
    await ok(call('POST', '/users', adminA, { email: 'wes@a.test', displayName: 'Wes', password: PASSWORD }), 201);
    const known = await call('POST', `/orgs/${orgB}/members`, mallory, { email: 'WES@a.test' });
    const created = await call('POST', '/users', mallory, { email: 'vic@a.test', displayName: 'Not Vic', password: PASSWORD });
    expect([unknown.status, known.status, created.status]).toEqual([202, 202, 202]);
    expect(shapeOf(known.body)).toEqual(shapeOf(unknown.body));
    expect(Object.keys(created.body).sort()).toEqual(Object.keys(unknown.body).sort());
    expect(created.body).toMatchObject({ status: 'invited', email: 'vic@a.test' });
    // The taken email's account was not touched: no new user, name and password as they were.
    const account = await pg.query('SELECT display_name FROM identity.user_account WHERE email = $1', ['vic@a.test']);
    expect(account.rows).toEqual([{ display_name: 'Vic' }]);
    await login(base, { email: 'vic@a.test', password: PASSWORD });
  });

  it('the invited user lists, declines and accepts; only a human session may accept', async () => {
    const mine = await ok(call('GET', '/invitations', vic.token));
    const fromB = mine.items.filter((i: Json) => i.orgId === orgB);
    expect(fromB).toHaveLength(1); // the repeated invitation of the same address is one invitation
    expect(fromB[0]).toMatchObject({ orgName: 'Org B', capabilities: [] });
    // Nobody else sees or decides it.
    expect((await ok(call('GET', '/invitations', mallory))).items).toEqual([]);
    expect((await call('POST', `/invitations/${fromB[0].id}/accept`, mallory)).status).toBe(404);

    const key = await ok(call('POST', '/api-keys', vic.token, { name: 'script', scopes: ['api_access'] }), 201);
    const byKey = await call('POST', `/invitations/${fromB[0].id}/accept`, key.key);
    expect(byKey.status).toBe(403);
    expect(await memberships(vic.id)).toEqual([orgA]);

    const accepted = await ok(call('POST', `/invitations/${fromB[0].id}/accept`, vic.token));
    expect(accepted).toMatchObject({ orgId: orgB, orgName: 'Org B', capabilities: [] });
    expect((await memberships(vic.id)).sort()).toEqual([orgA, orgB].sort());
    expect((await call('POST', `/invitations/${fromB[0].id}/accept`, vic.token)).status).toBe(404);
    await auditRows('identity.invitation.accepted', orgB);

    // A second org invites; vic declines: nothing changes but the invitation is gone.
    const orgC = (await ok(call('POST', '/orgs', adminA, { name: 'Org C' }), 201)).id;
    const inC = (await login(base, { email: 'admin@test.local', password: 'correct-horse-battery-staple', orgId: orgC } as never))
      .accessToken;
    const invite = await ok(call('POST', `/orgs/${orgC}/members`, inC, { email: 'vic@a.test' }), 202);
    await ok(call('POST', `/invitations/${invite.id}/decline`, vic.token), 204);
    expect((await memberships(vic.id)).includes(orgC)).toBe(false);
    expect((await ok(call('GET', `/orgs/${orgC}/invitations`, inC))).items).toEqual([]);
    await auditRows('identity.invitation.declined', orgC);
  });

  it('another org may change only its own membership: not the name, password or active flag', async () => {
    const role = await ok(call('POST', '/roles', adminInB, { name: 'B staff' }), 201);
    for (const change of [{ displayName: 'pwned' }, { password: 'another-long-password' }, { active: false }]) {
      const res = await call('PATCH', `/users/${vic.id}`, mallory, change);
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('forbidden');
    }
    const account = await pg.query('SELECT display_name, active FROM identity.user_account WHERE id = $1', [vic.id]);
    expect(account.rows).toEqual([{ display_name: 'Vic', active: true }]);
    expect(await ok(call('PATCH', `/users/${vic.id}`, mallory, { roleId: role.id }))).toMatchObject({ roleId: role.id });
    // Vic still works in A.
    expect((await call('GET', '/auth/me', vic.token)).status).toBe(200);
  });

  it('the home org renames, resets and deactivates its user whatever other orgs they joined', async () => {
    expect(await ok(call('PATCH', `/users/${vic.id}`, adminA, { displayName: 'Victoria' }))).toMatchObject({ displayName: 'Victoria' });
    expect((await call('PATCH', `/users/${vic.id}`, adminA, { password: 'a-new-long-password' })).status).toBe(200);
    await login(base, { email: 'vic@a.test', password: 'a-new-long-password' });
    const inB = await login(base, { email: 'vic@a.test', password: 'a-new-long-password', orgId: orgB } as never);
    expect((await call('PATCH', `/users/${vic.id}`, adminA, { active: false })).status).toBe(200);
    // The kill switch is installation-wide: the session in B ends too.
    expect((await call('GET', '/auth/me', inB.accessToken)).status).toBe(401);
    expect((await call('PATCH', `/users/${vic.id}`, adminA, { active: true })).status).toBe(200);
  });

  it('an invitation grants what the inviter still holds when it is accepted, never more', async () => {
    // mallory (manage_users, manage_permissions) cannot invite with a capability she lacks.
    const beyond = await call('POST', `/orgs/${orgB}/members`, mallory, { email: 'zed@a.test', capabilities: ['view_audit'] });
    expect(beyond.status).toBe(403);
    // A member of B is not invited again.
    expect((await call('POST', `/orgs/${orgB}/members`, mallory, { email: 'admin@test.local' })).status).toBe(409);

    await ok(call('POST', '/users', adminA, { email: 'zed@a.test', displayName: 'Zed', password: PASSWORD }), 201);
    const invite = await ok(
      call('POST', `/orgs/${orgB}/members`, adminInB, { email: 'zed@a.test', capabilities: ['manage_users', 'view_audit'] }),
      202,
    );
    expect(invite.capabilities).toEqual(['manage_users', 'view_audit']);
    // The inviting admin loses view_audit in B before zed accepts: the membership does not get it.
    const adminId = (await pg.query("SELECT id FROM identity.user_account WHERE email = 'admin@test.local'")).rows[0].id;
    await ok(call('PATCH', `/orgs/${orgB}/members/${adminId}`, mallory, { capabilities: ['manage_users', 'manage_permissions'] }));
    const zedToken = (await login(base, { email: 'zed@a.test', password: PASSWORD })).accessToken;
    const joined = await ok(call('POST', `/invitations/${invite.id}/accept`, zedToken));
    expect(joined).toMatchObject({ orgId: orgB, capabilities: ['manage_users'] });
    const [accepted] = await auditRows('identity.invitation.accepted', orgB, invite.id);
    expect(accepted.event.details).toMatchObject({ withheld: ['view_audit'] });

    // An invitation whose inviter can no longer manage users in the org has lapsed.
    const lapsing = await ok(call('POST', `/orgs/${orgB}/members`, mallory, { email: 'wes@a.test' }), 202);
    const malloryId = (await pg.query("SELECT id FROM identity.user_account WHERE email = 'mallory@b.test'")).rows[0].id;
    await ok(call('PATCH', `/orgs/${orgB}/members/${malloryId}`, adminInB, { capabilities: [] }));
    const wes = (await login(base, { email: 'wes@a.test', password: PASSWORD })).accessToken;
    expect((await call('POST', `/invitations/${lapsing.id}/accept`, wes)).status).toBe(404);
    expect(await memberships((await pg.query("SELECT id FROM identity.user_account WHERE email = 'wes@a.test'")).rows[0].id)).toEqual([
      orgA,
    ]);
  });
});
