import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { PermissionImpactBusHandler } from '../../apps/objects/src/impact/permission-impact.handler';
import { recordTableName } from '../../apps/objects/src/metadata/org-tables';
import { apiClient, type Json } from '../support/api';
import { login, startTestHost, type TestHost } from '../support/host';
import { pollUntil } from '../support/poll';

const PASSWORD = 'a-long-enough-password';
/** Field levels count only from sets that also grant read on the object (R5). */
const MARGIN_READ = { name: 'Margin readers', objects: { deal: { allowRead: true } }, fields: { deal: { '*': 'read', margin: 'read' } } };

interface Org {
  t: TestHost;
  db: Client;
  tokens: Record<string, string>;
  users: Record<string, string>;
  sets: Record<string, string>;
  groups: Record<string, string>;
  roles: Record<string, string>;
}

/**
 * An org with a private `deal` object (margin sensitive), reps who own deals, a group, a role tree
 * and two permission administrators: `pa` proposes, `pb` approves (neither can read deals), `pc`
 * approves and can read deals with their margin.
 */
async function setUp(name: string, env: Record<string, string> = {}): Promise<Org> {
  const t = await startTestHost(name, { CUSTODIAN_APPROVALS_SWEEP_MS: '0', ...env });
  try {
    return await populate(t);
  } catch (error) {
    await t.stop();
    throw error;
  }
}

async function populate(t: TestHost): Promise<Org> {
  const db = new Client({ connectionString: t.db.url });
  db.on('error', () => undefined); // the database is dropped under it when setup fails
  await db.connect();
  const { call, ok } = apiClient(() => t.host.url);
  const session = await login(t.host.url);
  const admin = session.accessToken;
  const org: Org = { t, db, tokens: { admin }, users: {}, sets: {}, groups: {}, roles: {} };
  await ok(
    call('POST', '/meta/objects', admin, {
      name: 'deal',
      label: 'Deal',
      sharingModel: 'private',
      fields: [
        { name: 'title', type: 'text' },
        { name: 'amount', type: 'number' },
        { name: 'margin', type: 'number', sensitive: true },
      ],
    }),
    201,
  );
  const set = async (key: string, body: Json): Promise<void> => {
    org.sets[key] = (await ok(call('POST', '/permission-sets', admin, { name: key, ...body }), 201)).id;
  };
  await set('Sales', { objects: { deal: { allowRead: true, allowCreate: true, allowEdit: true } }, fields: { deal: { '*': 'edit' } } });
  await set('Margin readers', {});
  await set('Deal viewers', { objects: { deal: { allowRead: true, viewAllRecords: true } }, fields: { deal: { '*': 'read' } } });
  await set('Permission admins', {
    systemCapabilities: ['manage_permissions', 'manage_roles', 'manage_sharing', 'approve_actions'],
    integrationCapabilities: ['api_access', 'agent_access'],
  });
  await set('User managers', { systemCapabilities: ['manage_users'] });
  await set('Margin auditors', {
    objects: { deal: { allowRead: true, viewAllRecords: true } },
    fields: { deal: { '*': 'read', margin: 'read' } },
  });
  org.roles.vp = (await ok(call('POST', '/roles', admin, { name: 'VP' }), 201)).id;
  org.roles.east = (await ok(call('POST', '/roles', admin, { name: 'East' }), 201)).id;
  const plan: Array<[string, string[], string | null]> = [
    ['rep1', ['Sales'], 'east'],
    ['rep2', ['Sales'], null],
    ['rep3', ['Sales'], null],
    ['vp', ['Sales'], 'vp'],
    ['viewer', [], null],
    ['pa', ['Permission admins'], null],
    ['pb', ['Permission admins'], null],
    ['pc', ['Permission admins', 'Margin auditors'], null],
  ];
  for (const [user, sets, role] of plan) {
    const u = await ok(call('POST', '/users', admin, { email: `${user}@test.local`, displayName: user, password: PASSWORD }), 201);
    org.users[user] = u.id;
    if (role) await ok(call('PATCH', `/users/${org.users[user]}`, admin, { roleId: org.roles[role] }));
    for (const s of sets) await ok(call('POST', `/permission-sets/${org.sets[s]}/assignments`, admin, { userId: org.users[user] }), 201);
    org.tokens[user] = (await login(t.host.url, { email: `${user}@test.local`, password: PASSWORD })).accessToken;
  }
  org.groups.margin = (await ok(call('POST', '/groups', admin, { name: 'Margin team' }), 201)).id;
  for (const u of ['rep1', 'rep2']) await ok(call('POST', `/groups/${org.groups.margin}/members`, admin, { userId: org.users[u] }), 201);
  await ok(call('POST', `/permission-sets/${org.sets['Margin readers']}/assignments`, admin, { groupId: org.groups.margin }), 201);
  const deals: Array<[string, number]> = [
    ['rep1', 2],
    ['rep2', 3],
    ['rep3', 1],
  ];
  for (const [user, n] of deals)
    for (let i = 0; i < n; i++) await ok(call('POST', '/data/deal', org.tokens[user], { title: `${user}-${i}`, amount: 100 + i }), 201);
  // Nobody may write the sensitive margin yet (no set names it); the test gives every deal one.
  await db.query(`UPDATE objects."${recordTableName(session.orgId, 'deal')}" SET margin = 0.25`);
  return org;
}

const propose = (org: Org, token: string, change: Json) =>
  apiClient(() => org.t.host.url).call('POST', '/approvals', token, { kind: 'permission.change', justification: 'access review', change });

const userImpact = (impact: Json, userId: string): Json | undefined => impact.users.find((u: Json) => u.userId === userId);

/**
 * Permission changes wait for approval and show reviewers their blast radius: who gains or loses
 * which access and on how many records, computed with the row filters before and after the change
 * in one read-only snapshot; applied by the owning service with a version and a receipt.
 */
describe('approvals: permission changes and their impact (in-process bus)', () => {
  let org: Org;
  const { call, ok } = apiClient(() => org.t.host.url);

  beforeAll(async () => {
    org = await setUp('approvals_perm');
  }, 120_000);

  afterAll(async () => {
    await org?.db.end();
    await org?.t.stop();
  });

  it('a set that grants margin read to a group: each member gains margin read over their records; the reviewer without margin sees the level, not the name', async () => {
    const { users, tokens, sets } = org;
    const filed = await ok(
      propose(org, tokens.pa, {
        type: 'permission_set.update',
        permissionSetId: sets['Margin readers'],
        body: MARGIN_READ,
      }),
      201,
    );
    expect(filed).toMatchObject({ state: 'pending', requiredApprovals: 1 });
    const impact = filed.diff;
    expect(impact.totals).toMatchObject({ usersInScope: 2, usersDetailed: 2, usersAffected: 2, losses: 0 });
    expect(impact.truncated).toBe(false);
    expect(userImpact(impact, users.rep1).objects.deal).toEqual({
      read: { before: true, after: true },
      edit: { before: true, after: true },
      delete: { before: false, after: false },
      records: { readable: { before: 2, after: 2 }, editable: { before: 2, after: 2 } },
      fields: { margin: { before: 'none', after: 'read' } },
    });
    expect(userImpact(impact, users.rep2).objects.deal.records.readable).toEqual({ before: 3, after: 3 });
    expect(userImpact(impact, users.rep3)).toBeUndefined();

    // pb holds manage_permissions but cannot read deals: the level change stays, the field name goes.
    const pb = await ok(call('GET', `/approvals/${filed.id}`, tokens.pb));
    expect(pb.kind).toBe('permission.change');
    expect(pb.approverCapability).toBe('manage_permissions');
    expect(userImpact(pb.diff, users.rep1).objects.deal.fields).toEqual({});
    expect(userImpact(pb.diff, users.rep1).objects.deal.hiddenFields).toEqual([{ before: 'none', after: 'read' }]);
    const pc = await ok(call('GET', `/approvals/${filed.id}`, tokens.pc));
    expect(userImpact(pc.diff, users.rep1).objects.deal.fields).toEqual({ margin: { before: 'none', after: 'read' } });
    // A holder of approve_actions alone is not a reviewer of permission changes.
    expect((await call('GET', `/approvals/${filed.id}`, tokens.vp)).status).toBe(404);

    // Nothing changed yet; the requester cannot approve their own change.
    const rep1Deals = await ok(call('GET', '/data/deal', tokens.rep1));
    expect(rep1Deals.items[0]).not.toHaveProperty('margin');
    const self = await call('POST', `/approvals/${filed.id}/approve`, tokens.pa, {});
    expect(self.status).toBe(403);
    expect(self.body.details.reason).toBe('self_approval');

    expect(await ok(call('POST', `/approvals/${filed.id}/approve`, tokens.pb, {}))).toMatchObject({ state: 'applied' });
    expect((await ok(call('GET', `/permission-sets/${sets['Margin readers']}`, tokens.admin))).body).toEqual(MARGIN_READ);
    await pollUntil(async () => (await ok(call('GET', '/data/deal', tokens.rep1))).items[0]?.margin === 0.25, {
      what: 'margin readable',
    });
    const audit = await org.db.query(
      `SELECT count(*)::int AS n FROM identity.outbox WHERE payload->>'action' = 'identity.permission_set.updated' AND payload->'actor'->>'userId' = $1`,
      [users.pa],
    );
    expect(audit.rows[0].n).toBe(1);
  });

  it('assigning a set shows the gain: read on deal and every record; after apply the user lists exactly that many', async () => {
    const { users, tokens, sets } = org;
    const filed = await ok(
      propose(org, tokens.pa, { type: 'permission_set.assign', permissionSetId: sets['Deal viewers'], userId: users.viewer }),
      201,
    );
    const deal = userImpact(filed.diff, users.viewer).objects.deal;
    expect(deal.read).toEqual({ before: false, after: true });
    expect(deal.records.readable).toEqual({ before: 0, after: 6 });
    expect(deal.records.editable).toEqual({ before: 0, after: 0 });
    expect(filed.diff.totals).toMatchObject({ usersInScope: 1, usersAffected: 1 });
    expect(filed.diff.totals.gains).toBeGreaterThanOrEqual(2);
    expect((await call('GET', '/data/deal', tokens.viewer)).status).not.toBe(200);
    expect(await ok(call('POST', `/approvals/${filed.id}/approve`, tokens.pb, {}))).toMatchObject({ state: 'applied' });
    const listed = await pollUntil(
      async () => {
        const r = await call('GET', '/data/deal?limit=200', tokens.viewer);
        return r.status === 200 ? r.body : undefined;
      },
      { what: 'viewer can list deals' },
    );
    expect(listed.items).toHaveLength(deal.records.readable.after);
    // Assigning it again is refused at filing: it is already there.
    expect(
      (await propose(org, tokens.pa, { type: 'permission_set.assign', permissionSetId: sets['Deal viewers'], userId: users.viewer }))
        .status,
    ).toBe(409);
  });

  it('a role move shows the hierarchy gain in record counts equal to what the user lists after apply', async () => {
    const { users, tokens, roles } = org;
    const filed = await ok(propose(org, tokens.pa, { type: 'role.move', roleId: roles.east, parentId: roles.vp }), 201);
    expect(filed.diff.target).toMatchObject({ role: { id: roles.east, name: 'East', parentId: null }, newParent: { id: roles.vp } });
    const vp = userImpact(filed.diff, users.vp).objects.deal;
    expect(vp.records.readable).toEqual({ before: 0, after: 2 });
    expect(vp.records.editable).toEqual({ before: 0, after: 2 });
    expect(vp.fields).toEqual({});
    // rep1 (in East) keeps what she had.
    expect(userImpact(filed.diff, users.rep1)).toBeUndefined();
    expect(await ok(call('POST', `/approvals/${filed.id}/approve`, tokens.pb, {}))).toMatchObject({ state: 'applied' });
    expect((await ok(call('GET', `/roles/${roles.east}`, tokens.admin))).parentId).toBe(roles.vp);
    const listed = await ok(call('GET', '/data/deal?limit=200', tokens.vp));
    expect(listed.items).toHaveLength(vp.records.readable.after);
  });

  it('a sharing rule: its grantees gain the matching records; objects applies it with the rules’ version', async () => {
    const { users, tokens, groups } = org;
    const rule = {
      name: 'big deals to margin team',
      type: 'criteria',
      criteria: { amount: { $gte: 101 } },
      sharedWith: { type: 'group', id: groups.margin },
      accessLevel: 'read',
    };
    const filed = await ok(propose(org, tokens.pa, { type: 'sharing_rule.upsert', object: 'deal', rule }), 201);
    expect(filed.diff.totals.usersInScope).toBe(2);
    // rep1 owns 2 (amounts 100, 101); others' deals with amount ≥ 101: rep2's 101, 102 and none of rep3's.
    expect(userImpact(filed.diff, users.rep1).objects.deal.records.readable).toEqual({ before: 2, after: 4 });
    expect(userImpact(filed.diff, users.rep2).objects.deal.records.readable).toEqual({ before: 3, after: 4 });
    expect(userImpact(filed.diff, users.rep1).objects.deal.records.editable).toEqual({ before: 2, after: 2 });
    const detail = await ok(call('GET', `/approvals/${filed.id}`, tokens.pb));
    expect(detail).toMatchObject({ object: 'deal', approverCapability: 'manage_sharing' });
    expect(await ok(call('POST', `/approvals/${filed.id}/approve`, tokens.pb, {}))).toMatchObject({ state: 'applied' });
    expect((await ok(call('GET', '/data/deal?limit=200', tokens.rep1))).items).toHaveLength(4);
    const rules = await ok(call('GET', '/meta/objects/deal/sharing-rules', tokens.admin));
    expect(rules.items.map((r: Json) => r.name)).toContain(rule.name);
  });

  it('a change whose target moved after filing is stale and never applied', async () => {
    const { tokens, sets } = org;
    const filed = await ok(
      propose(org, tokens.pa, {
        type: 'permission_set.update',
        permissionSetId: sets['Deal viewers'],
        body: {
          name: 'Deal viewers',
          objects: { deal: { allowRead: true, viewAllRecords: true, allowDelete: true } },
          fields: { deal: { '*': 'read' } },
        },
      }),
      201,
    );
    const direct = { name: 'Deal viewers', objects: { deal: { allowRead: true } }, fields: { deal: { '*': 'read' } } };
    await ok(call('PUT', `/permission-sets/${sets['Deal viewers']}`, tokens.admin, direct));
    const res = await ok(call('POST', `/approvals/${filed.id}/approve`, tokens.pb, {}));
    expect(res).toMatchObject({ state: 'stale', outcome: { code: 'precondition_failed' } });
    expect((await ok(call('GET', `/permission-sets/${sets['Deal viewers']}`, tokens.admin))).body).toEqual(direct);
  });

  it('who may propose: the direct route’s capability, never an agent; nothing is queued otherwise', async () => {
    const { tokens, sets, users } = org;
    const before = (await org.db.query('SELECT count(*)::int AS n FROM approvals.pending_action')).rows[0].n;
    const change = { type: 'permission_set.assign', permissionSetId: sets['Permission admins'], userId: users.rep3 };
    expect((await propose(org, tokens.rep1, change)).status).toBe(403);
    // A set carrying a capability the proposer lacks is refused at filing, as the direct route refuses it.
    const beyond = await propose(org, tokens.pa, {
      type: 'permission_set.assign',
      permissionSetId: sets['User managers'],
      userId: users.rep3,
    });
    expect(beyond.status).toBe(403);
    expect(beyond.body.details.reason).toBe('capability_not_held');
    const agent = await ok(
      call('POST', '/auth/token-exchange', undefined, {
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: tokens.pa,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        scope: 'data:read data:write metadata:write',
        client_id: 'perm-bot',
        agent_name: 'Permission bot',
      }),
    );
    const byAgent = await propose(org, agent.access_token, change);
    expect(byAgent.status).toBe(403);
    expect(byAgent.body.details.reason).toBe('missing_capability');
    const bad = await call('POST', '/approvals', tokens.pa, { kind: 'permission.change', object: 'deal', justification: 'x', change });
    expect(bad.status).toBe(400);
    expect((await call('POST', '/approvals', tokens.pa, { kind: 'permission.change', justification: 'x' })).status).toBe(400);
    expect((await propose(org, tokens.pa, { type: 'role.move', roleId: org.roles.vp, parentId: org.roles.east })).status).toBe(409);
    expect((await propose(org, tokens.pa, { ...change, permissionSetId: '00000000-0000-4000-8000-000000000000' })).status).toBe(404);
    expect((await org.db.query('SELECT count(*)::int AS n FROM approvals.pending_action')).rows[0].n).toBe(before);
  });

  it('caps: beyond the user limit the impact is truncated, with totals over everyone in scope', async () => {
    const { tokens, sets } = org;
    const handler = org.t.host.app.get(PermissionImpactBusHandler);
    const saved = handler.limits.users;
    handler.limits.users = 2;
    try {
      const filed = await ok(
        propose(org, tokens.pa, {
          type: 'permission_set.update',
          permissionSetId: sets.Sales,
          body: {
            name: 'Sales',
            objects: { deal: { allowRead: true, allowCreate: true, allowEdit: true, allowDelete: true } },
            fields: { deal: { '*': 'edit' } },
          },
        }),
        201,
      );
      expect(filed.diff.truncated).toBe(true);
      expect(filed.diff.totals).toMatchObject({ usersInScope: 4, usersDetailed: 2 });
      expect(filed.diff.users).toHaveLength(2);
      for (const u of filed.diff.users) expect(u.objects.deal.delete).toEqual({ before: false, after: true });
      expect(filed.diff.limits.users).toBe(2);
    } finally {
      handler.limits.users = saved;
    }
  });
});

describe('approvals: permission changes over NATS', () => {
  let org: Org;
  const { call, ok } = apiClient(() => org.t.host.url);

  beforeAll(async () => {
    org = await setUp('approvals_perm_nats', {
      NATS_URL: process.env.NATS_URL ?? 'nats://127.0.0.1:4222',
      CUSTODIAN_BUS_NAMESPACE: `t${randomBytes(5).toString('hex')}`,
    });
  }, 120_000);

  afterAll(async () => {
    await org?.db.end();
    await org?.t.stop();
  });

  it('a group’s set gaining margin read: the impact crosses the bus, and the approved change is applied by identity', async () => {
    const { users, tokens, sets } = org;
    const filed = await ok(
      propose(org, tokens.pa, {
        type: 'permission_set.update',
        permissionSetId: sets['Margin readers'],
        body: MARGIN_READ,
      }),
      201,
    );
    expect(userImpact(filed.diff, users.rep2).objects.deal).toMatchObject({
      records: { readable: { before: 3, after: 3 } },
      fields: { margin: { before: 'none', after: 'read' } },
    });
    expect(await ok(call('POST', `/approvals/${filed.id}/approve`, tokens.pb, {}))).toMatchObject({ state: 'applied' });
    await pollUntil(async () => (await ok(call('GET', '/data/deal', tokens.rep2))).items[0]?.margin === 0.25, {
      what: 'margin readable',
    });
  });
});
