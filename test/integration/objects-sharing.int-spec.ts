import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { apiClient, type Json } from '../support/api';
import { login, startTestHost, type TestHost } from '../support/host';

const PASSWORD = 'a-long-enough-password';

/**
 * Scenario suite: three users of a small CRM (account with a sensitive field, contact with a lookup,
 * line_item controlled by its account) drive the REST API; each assertion names exactly which
 * records and fields a user sees and may change — through sharing rules, explicit shares, the role
 * hierarchy, aggregates, expands and explain.
 */
describe('objects: sharing, aggregates, expand, explain (three users)', () => {
  let t: TestHost;
  let base: string;
  let pg: Client;
  let admin: string;
  let orgId: string;
  const u: Record<string, { id: string; token: string }> = {};
  let westTeam: string;
  const acc: Record<string, Json> = {};

  const { call, ok } = apiClient(() => base);
  const names = async (token: string, object = 'account'): Promise<string[]> =>
    (await ok(call('POST', '/query', token, { object, fields: ['name'], orderBy: [{ field: 'name' }] }))).items.map((r: Json) => r.name);

  beforeAll(async () => {
    t = await startTestHost('objshare');
    base = t.host.url;
    pg = new Client({ connectionString: t.db.url });
    await pg.connect();
    const session = await login(base);
    admin = session.accessToken;
    orgId = session.orgId;
    const lead = await ok(call('POST', '/roles', admin, { name: 'lead' }), 201);
    const rep = await ok(call('POST', '/roles', admin, { name: 'rep', parentId: lead.id }), 201);
    const set = await ok(
      call('POST', '/permission-sets', admin, {
        name: 'CRM',
        objects: {
          account: { allowRead: true, allowCreate: true, allowEdit: true, allowDelete: true, allowTransfer: true },
          contact: { allowRead: true, allowCreate: true, allowEdit: true },
          line_item: { allowRead: true, allowCreate: true, allowEdit: true },
        },
        fields: { account: { '*': 'edit' } },
      }),
      201,
    );
    const analyst = await ok(
      call('POST', '/permission-sets', admin, {
        name: 'Analyst',
        objects: { account: { allowRead: true } },
        fields: { account: { margin: 'read' } },
      }),
      201,
    );
    // rita (rep), rob (rep), lena (lead over both reps)
    for (const [name, role] of [
      ['rita', rep.id],
      ['rob', rep.id],
      ['lena', lead.id],
    ] as const) {
      const user = await ok(
        call('POST', '/users', admin, { email: `${name}@test.local`, displayName: name, password: PASSWORD, roleId: role }),
        201,
      );
      await ok(call('POST', `/permission-sets/${set.id}/assignments`, admin, { userId: user.id }), 201);
      if (name === 'lena') await ok(call('POST', `/permission-sets/${analyst.id}/assignments`, admin, { userId: user.id }), 201);
      u[name] = { id: user.id, token: '' };
    }
    const group = await ok(call('POST', '/groups', admin, { name: 'west_team' }), 201);
    westTeam = group.id;
    await ok(call('POST', `/groups/${westTeam}/members`, admin, { userId: u.rob.id }), 201);
    for (const name of Object.keys(u)) u[name].token = (await login(base, { email: `${name}@test.local`, password: PASSWORD })).accessToken;

    await ok(
      call('POST', '/meta/objects', admin, {
        name: 'account',
        label: 'Account',
        fields: [
          { name: 'name', type: 'text', required: true },
          { name: 'region', type: 'select', options: ['west', 'east'] },
          { name: 'amount', type: 'number' },
          { name: 'margin', type: 'number', sensitive: true },
        ],
      }),
      201,
    );
    await ok(
      call('POST', '/meta/objects', admin, {
        name: 'contact',
        label: 'Contact',
        fields: [
          { name: 'name', type: 'text', required: true },
          { name: 'account', type: 'lookup', reference: 'account' },
        ],
      }),
      201,
    );
    await ok(
      call('POST', '/meta/objects', admin, {
        name: 'line_item',
        label: 'Line item',
        sharingModel: 'controlled_by_parent',
        fields: [
          { name: 'name', type: 'text' },
          { name: 'account', type: 'master_detail', reference: 'account' },
        ],
      }),
      201,
    );
    for (const [name, region, amount, margin] of [
      ['Alpha', 'west', 100, 10],
      ['Bravo', 'east', 50, 5],
      ['Charlie', 'west', 25, 1],
    ] as const) {
      acc[name] = await ok(call('POST', '/data/account', u.rita.token, { name, region, amount }), 201);
      await pg.query(`UPDATE objects."r_${orgId.replace(/-/g, '')}_account" SET margin = $2 WHERE id = $1`, [acc[name].id, margin]);
    }
  }, 60_000);

  afterAll(async () => {
    await pg?.end();
    await t?.stop();
  });

  it('baseline: rita (owner) sees all three, lena (lead) sees all three with margin, rob sees none', async () => {
    expect(await names(u.rita.token)).toEqual(['Alpha', 'Bravo', 'Charlie']);
    expect(await names(u.lena.token)).toEqual(['Alpha', 'Bravo', 'Charlie']);
    expect(await names(u.rob.token)).toEqual([]);
    const lena = await ok(call('GET', `/data/account/${acc.Alpha.id}`, u.lena.token));
    expect(lena.margin).toBe(10);
    const rita = await ok(call('GET', `/data/account/${acc.Alpha.id}`, u.rita.token));
    expect(rita).not.toHaveProperty('margin');
  });

  it('criteria sharing rule (region = west → group west_team, read): rob reads west accounts, cannot edit', async () => {
    expect((await call('POST', '/meta/objects/account/sharing-rules', u.rita.token, {})).status).toBe(403);
    await ok(
      call('POST', '/meta/objects/account/sharing-rules', admin, {
        name: 'West to west team',
        type: 'criteria',
        criteria: { region: 'west' },
        sharedWith: { type: 'group', id: westTeam },
        accessLevel: 'read',
      }),
      201,
    );
    expect(await names(u.rob.token)).toEqual(['Alpha', 'Charlie']);
    const patch = await call('PATCH', `/data/account/${acc.Alpha.id}`, u.rob.token, { amount: 1 }, { 'if-match': '"1"' });
    expect([patch.status, patch.body.code]).toEqual([403, 'action_not_allowed']);
    const explained = await ok(call('POST', '/access/explain', u.rob.token, { action: 'read', object: 'account', recordId: acc.Alpha.id }));
    expect(explained).toMatchObject({ allowed: true, decidedBy: 'sharing_rule', source: 'West to west team' });
    const rules = await ok(call('GET', '/meta/objects/account/sharing-rules', admin));
    expect(rules).toEqual({ items: [expect.objectContaining({ name: 'West to west team' })], nextCursor: null });
  });

  it('explicit share (edit) lets rob edit Bravo but not delete it or manage its shares; revoking removes access', async () => {
    expect(
      (
        await call('POST', `/data/account/${acc.Bravo.id}/shares`, u.rob.token, {
          granteeType: 'user',
          granteeId: u.rob.id,
          accessLevel: 'edit',
        })
      ).status,
    ).toBe(404);
    const share = await ok(
      call('POST', `/data/account/${acc.Bravo.id}/shares`, u.rita.token, { granteeType: 'user', granteeId: u.rob.id, accessLevel: 'edit' }),
      201,
    );
    const edited = await ok(call('PATCH', `/data/account/${acc.Bravo.id}`, u.rob.token, { amount: 55 }, { 'if-match': '"1"' }));
    expect(edited.amount).toBe(55);
    expect((await call('DELETE', `/data/account/${acc.Bravo.id}`, u.rob.token)).status).toBe(403);
    expect((await call('GET', `/data/account/${acc.Bravo.id}/shares`, u.rob.token)).status).toBe(403);
    const listed = await ok(call('GET', `/data/account/${acc.Bravo.id}/shares`, u.rita.token));
    expect(listed.nextCursor).toBeNull();
    expect(listed.items.map((s: Json) => s.granteeId)).toEqual([u.rob.id]);
    const audit = await pg.query(
      `SELECT 1 FROM objects.outbox WHERE payload->>'action' = 'objects.share.granted' AND payload->'target'->>'id' = $1`,
      [acc.Bravo.id],
    );
    expect(audit.rowCount).toBe(1);
    expect(share).toMatchObject({ created: true, previousAccessLevel: null, accessLevel: 'edit' });

    // Granting again is an explicit upsert: the same level answers 200 and says so; lowering edit to
    // read without "replace" is refused (never a silent downgrade); with it, it says what it replaced.
    const again = { granteeType: 'user', granteeId: u.rob.id, accessLevel: 'edit' };
    expect(await ok(call('POST', `/data/account/${acc.Bravo.id}/shares`, u.rita.token, again))).toMatchObject({
      id: share.id,
      created: false,
      previousAccessLevel: 'edit',
    });
    const lower = { ...again, accessLevel: 'read' };
    const refused = await call('POST', `/data/account/${acc.Bravo.id}/shares`, u.rita.token, lower);
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('conflict');
    expect((await ok(call('GET', `/data/account/${acc.Bravo.id}/shares`, u.rita.token))).items[0].accessLevel).toBe('edit');
    const lowered = await ok(call('POST', `/data/account/${acc.Bravo.id}/shares`, u.rita.token, { ...lower, replace: true }));
    expect(lowered).toMatchObject({ id: share.id, created: false, accessLevel: 'read', previousAccessLevel: 'edit' });
    expect((await call('PATCH', `/data/account/${acc.Bravo.id}`, u.rob.token, { amount: 56 }, { 'if-match': '"2"' })).status).toBe(403);

    await ok(call('DELETE', `/data/account/${acc.Bravo.id}/shares/${share.id}`, u.rita.token), 204);
    expect(await names(u.rob.token)).toEqual(['Alpha', 'Charlie']);
  });

  it('refuses a share to a grantee outside this org, the same for unknown and foreign ids; fresh ones are found at once', async () => {
    const other = await ok(call('POST', '/orgs', admin, { name: 'Elsewhere' }), 201);
    const inOther = (await login(base, { email: 'admin@test.local', password: 'correct-horse-battery-staple', orgId: other.id } as never))
      .accessToken;
    const farUser = await ok(call('POST', '/users', inOther, { email: 'far@other.test', displayName: 'far', password: PASSWORD }), 201);
    const farGroup = await ok(call('POST', '/groups', inOther, { name: 'far_group' }), 201);
    const farRole = await ok(call('POST', '/roles', inOther, { name: 'far_role' }), 201);
    const cases: Array<[string, string]> = [
      ['user', farUser.id],
      ['user', randomUUID()],
      ['group', farGroup.id],
      ['group', randomUUID()],
      ['role', farRole.id],
      ['role_and_subordinates', farRole.id],
      ['role', randomUUID()],
      ['group', u.rob.id], // an id of this org, but not of that kind
    ];
    for (const [granteeType, granteeId] of cases) {
      const res = await call('POST', `/data/account/${acc.Charlie.id}/shares`, u.rita.token, {
        granteeType,
        granteeId,
        accessLevel: 'read',
      });
      expect([granteeType, res.status, res.body.code, res.body.details]).toEqual([
        granteeType,
        400,
        'validation_failed',
        { issues: [{ path: '/granteeId', message: 'not found in this organization' }] },
      ]);
    }
    const stored = await pg.query('SELECT count(*)::int AS n FROM objects.record_shares WHERE record_id = $1', [acc.Charlie.id]);
    expect(stored.rows[0].n).toBe(0);

    // A user without a role and a group without members, created a moment ago, are found at once.
    const fresh = await ok(call('POST', '/users', admin, { email: 'fresh@test.local', displayName: 'fresh', password: PASSWORD }), 201);
    const emptyGroup = await ok(call('POST', '/groups', admin, { name: 'empty_team' }), 201);
    for (const [granteeType, granteeId] of [
      ['user', fresh.id],
      ['group', emptyGroup.id],
    ]) {
      const share = await ok(
        call('POST', `/data/account/${acc.Charlie.id}/shares`, u.rita.token, { granteeType, granteeId, accessLevel: 'read' }),
        201,
      );
      await ok(call('DELETE', `/data/account/${acc.Charlie.id}/shares/${share.id}`, u.rita.token), 204);
    }
  });

  it('aggregates count only readable rows; grouping or aggregating a hidden field is 403', async () => {
    const rob = await ok(
      call('POST', '/query', u.rob.token, {
        object: 'account',
        aggregations: [
          { function: 'count', alias: 'n' },
          { function: 'sum', field: 'amount', alias: 'total' },
        ],
      }),
    );
    expect(rob.groups).toEqual([{ n: 2, total: 125 }]);
    const byRegion = await ok(
      call('POST', '/query', u.rita.token, {
        object: 'account',
        groupBy: ['region'],
        aggregations: [
          { function: 'count', alias: 'n' },
          { function: 'max', field: 'amount', alias: 'top' },
        ],
      }),
    );
    expect(byRegion.groups).toEqual([
      { region: 'east', n: 1, top: 55 },
      { region: 'west', n: 2, top: 100 },
    ]);
    for (const q of [
      { aggregations: [{ function: 'sum', field: 'margin', alias: 's' }] },
      { groupBy: ['margin'], aggregations: [{ function: 'count', alias: 'n' }] },
      { where: { margin: { $gt: 1 } }, aggregations: [{ function: 'count', alias: 'n' }] },
    ]) {
      const res = await call('POST', '/query', u.rita.token, { object: 'account', ...q });
      expect([res.status, res.body.code]).toEqual([403, 'field_not_readable']);
    }
    const lena = await ok(
      call('POST', '/query', u.lena.token, {
        object: 'account',
        aggregations: [
          { function: 'avg', field: 'margin', alias: 'm' },
          { function: 'count_distinct', field: 'region', alias: 'r' },
        ],
      }),
    );
    expect(lena.groups[0].r).toBe(2);
    expect(lena.groups[0].m).toBeCloseTo(16 / 3);
  });

  it('expand checks the referenced object on its own: rows and fields', async () => {
    await ok(call('POST', '/data/contact', u.rob.token, { name: 'Carl', account: acc.Alpha.id }), 201);
    // rob cannot reference a record he cannot read
    expect((await call('POST', '/data/contact', u.rob.token, { name: 'Eve', account: acc.Bravo.id })).status).toBe(400);
    const rita = await ok(call('POST', '/data/contact', u.rita.token, { name: 'Dora', account: acc.Bravo.id }), 201);
    await ok(
      call('POST', `/data/contact/${rita.id}/shares`, u.rita.token, { granteeType: 'user', granteeId: u.rob.id, accessLevel: 'read' }),
      201,
    );
    const res = await ok(call('POST', '/query', u.rob.token, { object: 'contact', orderBy: [{ field: 'name' }], expand: ['account'] }));
    expect(res.items.map((r: Json) => [r.name, r.expanded.account?.name ?? null])).toEqual([
      ['Carl', 'Alpha'],
      ['Dora', null], // the contact is shared with rob, its account is not
    ]);
    expect(res.items[0].expanded.account).not.toHaveProperty('margin');
    const lena = await ok(
      call('POST', '/query', u.lena.token, {
        object: 'contact',
        fields: ['name', 'account'],
        expand: ['account'],
        orderBy: [{ field: 'name' }],
      }),
    );
    expect(lena.items[0].expanded.account.margin).toBe(10);
  });

  it('controlled_by_parent: a line item follows its account', async () => {
    await ok(call('POST', '/data/line_item', u.rita.token, { name: 'L1', account: acc.Alpha.id }), 201);
    await ok(call('POST', '/data/line_item', u.rita.token, { name: 'L2', account: acc.Bravo.id }), 201);
    expect(await names(u.rob.token, 'line_item')).toEqual(['L1']);
    expect(await names(u.lena.token, 'line_item')).toEqual(['L1', 'L2']);
    // a master with details cannot be deleted behind the details' backs
    expect((await call('DELETE', `/data/account/${acc.Alpha.id}`, u.rita.token)).status).toBe(409);
  });

  it('transfer needs full access; explain for someone else needs manage_permissions', async () => {
    expect((await call('POST', `/data/account/${acc.Charlie.id}/transfer`, u.rob.token, { ownerId: u.rob.id })).status).toBe(403);
    const moved = await ok(call('POST', `/data/account/${acc.Charlie.id}/transfer`, u.rita.token, { ownerId: u.rob.id }));
    expect(moved.owner_id).toBe(u.rob.id);
    expect((await call('DELETE', `/data/account/${acc.Charlie.id}`, u.rob.token)).status).toBe(204);
    expect((await call('POST', '/access/explain', u.rob.token, { userId: u.rita.id, action: 'read', object: 'account' })).status).toBe(403);
    const forRob = await ok(
      call('POST', '/access/explain', admin, { userId: u.rob.id, action: 'delete', object: 'account', recordId: acc.Bravo.id }),
    );
    expect(forRob).toMatchObject({ allowed: false, userId: u.rob.id });
    const field = await ok(call('POST', '/access/explain', u.rita.token, { action: 'read', object: 'account', field: 'margin' }));
    expect(field).toMatchObject({ allowed: false, decidedBy: 'field_security' });
  });

  it('explain agrees with the API on a line item reached through an explicitly shared account', async () => {
    // rob reaches a line item only through an explicit edit share on its account.
    const item = await ok(call('POST', '/data/line_item', u.rita.token, { name: 'L3', account: acc.Bravo.id }), 201);
    const share = await ok(
      call('POST', `/data/account/${acc.Bravo.id}/shares`, u.rita.token, { granteeType: 'user', granteeId: u.rob.id, accessLevel: 'edit' }),
      201,
    );
    expect((await ok(call('GET', `/data/line_item/${item.id}`, u.rob.token))).name).toBe('L3');
    await ok(call('PATCH', `/data/line_item/${item.id}`, u.rob.token, { name: 'L3b' }, { 'if-match': '"1"' }));
    for (const action of ['read', 'edit'])
      expect(await ok(call('POST', '/access/explain', u.rob.token, { action, object: 'line_item', recordId: item.id }))).toMatchObject({
        allowed: true,
        decidedBy: 'parent',
        source: `account:${acc.Bravo.id}`,
      });
    // ...no delete (the CRM set has no allowDelete on line items), which explain says too.
    expect((await call('DELETE', `/data/line_item/${item.id}`, u.rob.token)).status).toBe(403);
    expect(
      await ok(call('POST', '/access/explain', u.rob.token, { action: 'delete', object: 'line_item', recordId: item.id })),
    ).toMatchObject({
      allowed: false,
      decidedBy: 'object_permission',
    });
    await ok(call('DELETE', `/data/account/${acc.Bravo.id}/shares/${share.id}`, u.rita.token), 204);
  });

  it('edit, delete and transfer need read: the owner without allowRead gets 404, and explain says object_permission', async () => {
    // dora may edit, delete and transfer accounts but not read them; she owns one.
    const writer = await ok(
      call('POST', '/permission-sets', admin, {
        name: 'Write without read',
        objects: { account: { allowEdit: true, allowDelete: true, allowTransfer: true } },
      }),
      201,
    );
    const dora = await ok(call('POST', '/users', admin, { email: 'dora@test.local', displayName: 'dora', password: PASSWORD }), 201);
    await ok(call('POST', `/permission-sets/${writer.id}/assignments`, admin, { userId: dora.id }), 201);
    const token = (await login(base, { email: 'dora@test.local', password: PASSWORD })).accessToken;
    const owned = await ok(call('POST', '/data/account', u.rita.token, { name: 'Delta', region: 'east' }), 201);
    await pg.query(`UPDATE objects."r_${orgId.replace(/-/g, '')}_account" SET owner_id = $2 WHERE id = $1`, [owned.id, dora.id]);
    expect((await call('GET', `/data/account/${owned.id}`, token)).status).toBe(404);
    expect((await call('PATCH', `/data/account/${owned.id}`, token, { amount: 1 }, { 'if-match': '"1"' })).status).toBe(404);
    expect((await call('POST', `/data/account/${owned.id}/transfer`, token, { ownerId: u.rita.id })).status).toBe(404);
    expect((await call('DELETE', `/data/account/${owned.id}`, token)).status).toBe(404);
    for (const action of ['edit', 'delete', 'transfer']) {
      expect(await ok(call('POST', '/access/explain', token, { action, object: 'account' }))).toMatchObject({
        allowed: false,
        decidedBy: 'object_permission',
      });
      expect(
        await ok(call('POST', '/access/explain', admin, { userId: dora.id, action, object: 'account', recordId: owned.id })),
      ).toMatchObject({ allowed: false, decidedBy: 'object_permission', userId: dora.id });
    }
    expect((await call('POST', '/access/explain', token, { action: 'delete', object: 'account', recordId: owned.id })).status).toBe(404);
    expect((await ok(call('GET', `/data/account/${owned.id}`, admin))).owner_id).toBe(dora.id);
  });
});
