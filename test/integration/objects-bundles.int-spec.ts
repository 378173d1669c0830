import path from 'node:path';
import { Client } from 'pg';
import { apiClient, type Json } from '../support/api';
import { runCustodian } from '../support/cli';
import { login, startTestHost, type TestHost } from '../support/host';

const PASSWORD = 'a-long-enough-password';
const DEMO = path.join(__dirname, '../../apps/objects/bundles/demo-crm.yaml');

/**
 * Bundles: schema validation (JSON and YAML), dry-run diff without writes, idempotent apply — then the
 * demo CRM driven as three users, asserting exactly which records and fields each sees and changes.
 */
describe('objects: bundles and the demo CRM', () => {
  let t: TestHost;
  let base: string;
  let pg: Client;
  let admin: string;
  let orgId: string;

  const { call, ok } = apiClient(() => base);
  /** `custodian bundle apply <file> [--dry-run]` in-process (cli/run.ts) as the admin: its JSON answer. */
  const applyBundle = async (file: string, dryRun = false): Promise<{ dryRun: boolean; changes: Json[] }> => {
    const r = await runCustodian(['bundle', 'apply', file, '--url', base, ...(dryRun ? ['--dry-run'] : [])], { CUSTODIAN_TOKEN: admin });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    return JSON.parse(r.stdout) as { dryRun: boolean; changes: Json[] };
  };

  beforeAll(async () => {
    t = await startTestHost('objbundle');
    base = t.host.url;
    pg = new Client({ connectionString: t.db.url });
    await pg.connect();
    const session = await login(base);
    admin = session.accessToken;
    orgId = session.orgId;
  }, 60_000);

  afterAll(async () => {
    await pg?.end();
    await t?.stop();
  });

  it('refuses invalid documents: schema, YAML, prototype keys, aliases (400)', async () => {
    for (const body of [
      { bundle: { apiVersion: 'custodian.dev/v1', kind: 'Bundle', name: 'x', surprise: 1 } },
      { bundle: { apiVersion: 'custodian.dev/v2', kind: 'Bundle', name: 'x' } },
      { document: 'apiVersion: [unclosed' },
      { document: 'apiVersion: custodian.dev/v1\nkind: Bundle\nname: x\n__proto__: { polluted: true }\n' },
      { document: 'a: &a [1]\nb: *a\n' },
    ]) {
      const res = await call('POST', '/bundles/apply', admin, body);
      expect(res.status).toBe(400);
    }
    expect(({} as Json).polluted).toBeUndefined();
    const schema = await ok(call('GET', '/bundles/schema', admin));
    expect(schema.$id).toBe('https://custodian.dev/schemas/bundle.json');
  });

  const counts = async (): Promise<Record<string, number>> => {
    const q = async (sql: string): Promise<number> => (await pg.query(sql, [orgId])).rows[0].n as number;
    return {
      roles: await q('SELECT count(*)::int AS n FROM identity.role WHERE org_id = $1'),
      groups: await q('SELECT count(*)::int AS n FROM identity.user_group WHERE org_id = $1'),
      sets: await q('SELECT count(*)::int AS n FROM identity.permission_set WHERE org_id = $1'),
      objects: await q('SELECT count(*)::int AS n FROM objects.object_definition WHERE org_id = $1'),
      actions: await q('SELECT count(*)::int AS n FROM objects.object_action WHERE org_id = $1'),
      policies: await q('SELECT count(*)::int AS n FROM approvals.approval_policy WHERE org_id = $1'),
    };
  };
  const lines = (changes: Json[]): string[] => changes.map((c: Json) => `${c.kind}:${c.name}:${c.change}`);

  it('dry-run diffs every section and writes nothing in any service', async () => {
    const before = await counts();
    expect(before).toEqual({ roles: 0, groups: 0, sets: 0, objects: 0, actions: 0, policies: 0 });
    const dry = await applyBundle(DEMO, true);
    expect(dry.dryRun).toBe(true);
    expect(lines(dry.changes)).toEqual([
      'role:vp_sales:create',
      'role:rep_west:create',
      'role:rep_east:create',
      'group:west_team:create',
      'permission_set:Sales Rep:create',
      'permission_set:Sales Finance:create',
      'permission_set:Sales Manager:create',
      'object:account:create',
      'object:contact:create',
      'object:opportunity:create',
      'sharing_rules:account:update',
      'action:opportunity.mark_won:create',
      'action:opportunity.mark_lost:create',
      'approval_policy:Closing and deleting deals:create',
    ]);
    expect(await counts()).toEqual(before);
    // Nothing was kept, so a dry run's creates carry no ids (an object's id is its name).
    expect(dry.changes.filter((c: Json) => c.change === 'create' && c.kind !== 'object' && 'id' in c)).toEqual([]);
    expect((await ok(call('GET', '/meta/objects', admin))).items).toEqual([]);
    expect((await ok(call('GET', '/roles', admin))).items).toEqual([]);
    expect((await ok(call('GET', '/approvals/policies', admin))).items).toEqual([]);
  });

  it('apply: every section, grantee names resolved, listable; a second apply is all unchanged', async () => {
    const applied = await applyBundle(DEMO);
    expect(applied.changes.every((c) => c.change === 'create' || c.kind === 'sharing_rules')).toBe(true);
    expect(await counts()).toEqual({ roles: 3, groups: 1, sets: 3, objects: 3, actions: 2, policies: 1 });

    const roles = new Map<string, Json>((await ok(call('GET', '/roles', admin))).items.map((r: Json) => [r.name, r]));
    expect(roles.get('rep_west').parentId).toBe(roles.get('vp_sales').id);
    // The answer names the id of everything it created, so a script can go on without listing.
    const idOf = (kind: string, name: string): string => (applied.changes as Json[]).find((c) => c.kind === kind && c.name === name).id;
    expect(idOf('role', 'rep_west')).toBe(roles.get('rep_west').id);
    const sets = (await ok(call('GET', '/permission-sets', admin))).items as Json[];
    expect(idOf('permission_set', 'Sales Rep')).toBe(sets.find((x) => x.name === 'Sales Rep').id);
    expect(idOf('object', 'account')).toBe('account');
    const westTeam = (await ok(call('GET', '/groups', admin))).items.find((g: Json) => g.name === 'west_team');
    expect(idOf('group', 'west_team')).toBe(westTeam.id);
    const rules = await ok(call('GET', '/meta/objects/account/sharing-rules', admin));
    expect(JSON.stringify(rules)).toContain(westTeam.id);
    expect(JSON.stringify(rules)).not.toContain('"name":"west_team"');

    const actions = (await ok(call('GET', '/meta/objects/opportunity/actions', admin))).items;
    expect(actions.map((a: Json) => [a.name, a.set, a.requiresApproval])).toEqual([
      ['mark_lost', { stage: 'closed_lost' }, false],
      ['mark_won', { stage: 'closed_won' }, true],
    ]);
    expect((await call('GET', '/meta/objects/nothing/actions', admin)).status).toBe(404);
    const policies = (await ok(call('GET', '/approvals/policies', admin))).items;
    expect(idOf('approval_policy', 'Closing and deleting deals')).toBe(policies[0].id);
    expect(policies).toEqual([
      expect.objectContaining({
        name: 'Closing and deleting deals',
        object: 'opportunity',
        operations: ['action', 'delete'],
        approverCapability: 'approve_actions',
        minApprovals: 1,
        separationOfDuties: true,
      }),
    ]);

    const again = await applyBundle(DEMO);
    expect(again.changes.length).toBe(14);
    expect(again.changes.filter((c) => c.change !== 'unchanged')).toEqual([]);
    const dryAgain = await applyBundle(DEMO, true);
    expect(dryAgain.changes.filter((c) => c.change !== 'unchanged')).toEqual([]);

    const audit = await pg.query(
      `SELECT payload->'details' AS d FROM objects.outbox WHERE payload->>'action' = 'objects.bundle.applied' ORDER BY created_at, id`,
    );
    expect(audit.rows.length).toBe(2);
    expect(Object.keys(audit.rows[0].d.summary).sort()).toEqual([
      'action',
      'approval_policy',
      'group',
      'object',
      'permission_set',
      'role',
      'sharing_rules',
    ]);
    expect(audit.rows[0].d.summary.role).toEqual({ create: 3, update: 0, unchanged: 0 });
    expect(audit.rows[1].d.summary.approval_policy).toEqual({ create: 0, update: 0, unchanged: 1 });
    // identity and approvals audited their own changes through their outboxes
    const identityAudit = await pg.query(
      `SELECT count(*)::int AS n FROM identity.outbox WHERE payload->>'action' = 'identity.role.created'`,
    );
    expect(identityAudit.rows[0].n).toBe(3);
    const approvalsAudit = await pg.query(
      `SELECT count(*)::int AS n FROM approvals.outbox WHERE payload->>'action' = 'approvals.policy.changed'`,
    );
    expect(approvalsAudit.rows[0].n).toBe(1);
  });

  it('updates converge: a changed set, role parent, action and policy are updates, the rest unchanged', async () => {
    const doc = {
      apiVersion: 'custodian.dev/v1',
      kind: 'Bundle',
      name: 'tweak',
      roles: [{ name: 'rep_east', parent: 'rep_west' }],
      permissionSets: [{ name: 'Sales Finance', apps: ['crm'], objects: { opportunity: { allowRead: true } } }],
      actions: [{ name: 'mark_lost', object: 'opportunity', label: 'Lose it', kind: 'update', set: { stage: 'closed_lost' } }],
      approvalPolicies: [{ name: 'Closing and deleting deals', object: 'opportunity', operations: ['delete'], minApprovals: 2 }],
    };
    const res = await ok(call('POST', '/bundles/apply', admin, { bundle: doc }));
    expect(lines(res.changes)).toEqual([
      'role:rep_east:update',
      'permission_set:Sales Finance:update',
      'action:opportunity.mark_lost:update',
      'approval_policy:Closing and deleting deals:update',
    ]);
    // put the demo back: re-applying converges
    const back = await applyBundle(DEMO);
    expect(lines(back.changes.filter((c) => c.change !== 'unchanged'))).toEqual([
      'role:rep_east:update',
      'permission_set:Sales Finance:update',
      'action:opportunity.mark_lost:update',
      'approval_policy:Closing and deleting deals:update',
    ]);
  });

  it('a role cycle, an unknown parent or an unknown grantee name is 400 and writes nothing', async () => {
    const before = await counts();
    const bundle = (extra: Json): Json => ({ apiVersion: 'custodian.dev/v1', kind: 'Bundle', name: 'bad', ...extra });
    for (const [doc, path] of [
      [
        bundle({
          roles: [
            { name: 'a', parent: 'b' },
            { name: 'b', parent: 'a' },
          ],
        }),
        '/roles/',
      ],
      [bundle({ roles: [{ name: 'a', parent: 'nobody' }] }), '/roles/0/parent'],
      [
        bundle({
          groups: [{ name: 'fresh_group' }],
          sharingRules: {
            account: [
              {
                name: 'r',
                type: 'criteria',
                criteria: { region: 'east' },
                sharedWith: { type: 'group', name: 'nope' },
                accessLevel: 'read',
              },
            ],
          },
        }),
        '/sharingRules/account/0/sharedWith/name',
      ],
    ] as const) {
      const res = await call('POST', '/bundles/apply', admin, { bundle: doc });
      expect([res.status, res.headers.get('content-type')]).toEqual([400, expect.stringContaining('application/problem+json')]);
      expect(res.body.details.issues[0].path).toContain(path);
    }
    expect(await counts()).toEqual(before);
  });

  it('invalid actions and approval policies: 400 problem+json with issue paths, nothing written in any service', async () => {
    const before = await counts();
    const bundle = (extra: Json): Json => ({
      apiVersion: 'custodian.dev/v1',
      kind: 'Bundle',
      name: 'bad',
      roles: [{ name: 'never_created' }],
      ...extra,
    });
    const action = (over: Json): Json => ({
      name: 'x',
      object: 'opportunity',
      label: 'X',
      kind: 'update',
      set: { stage: 'closed_won' },
      ...over,
    });
    for (const [doc, path] of [
      [bundle({ actions: [action({ object: 'nothing' })] }), '/actions/0/object'],
      [bundle({ actions: [action({ set: { nope: 1 } })] }), '/actions/0/set/nope'],
      [bundle({ actions: [action({ set: { stage: 'not_a_stage' } })] }), '/actions/0/set/stage'],
      [bundle({ actions: [action({ set: { amount: 'lots' } })] }), '/actions/0/set/amount'],
      [bundle({ actions: [action({ set: { owner_id: '00000000-0000-4000-8000-000000000000' } })] }), '/actions/0/set/owner_id'],
      [bundle({ actions: [action({ kind: 'delete' })] }), '/actions/0/kind'],
      [bundle({ approvalPolicies: [{ name: 'p', object: 'nothing', operations: ['update'] }] }), '/approvalPolicies/0/object'],
      [bundle({ approvalPolicies: [{ name: 'p', operations: ['update'], minApprovals: 6 }] }), '/approvalPolicies/0/minApprovals'],
      [bundle({ approvalPolicies: [{ name: 'p', operations: ['launch'] }] }), '/approvalPolicies/0/operations/0'],
      [
        bundle({ approvalPolicies: [{ name: 'p', operations: ['update'], approverCapability: 'root' }] }),
        '/approvalPolicies/0/approverCapability',
      ],
    ] as const) {
      const res = await call('POST', '/bundles/apply', admin, { bundle: doc });
      expect([res.status, res.headers.get('content-type')]).toEqual([400, expect.stringContaining('application/problem+json')]);
      expect(res.body.details.issues.map((i: Json) => i.path)).toEqual(expect.arrayContaining([expect.stringContaining(path)]));
    }
    const proto = await call('POST', '/bundles/apply', admin, {
      document:
        'apiVersion: custodian.dev/v1\nkind: Bundle\nname: x\nactions:\n  - { name: x, object: opportunity, label: X, kind: update, set: { __proto__: { polluted: true } } }\n',
    });
    expect(proto.status).toBe(400);
    expect(({} as Json).polluted).toBeUndefined();
    // YAML's .nan / .inf have no JSON form: refused by the path of the first, never stored or hashed as null.
    for (const [value, path] of [
      ['.nan', '/actions/0/set/amount'],
      ['-.inf', '/actions/0/set/amount'],
      ['[1, .inf]', '/actions/0/set/amount/1'],
    ] as const) {
      const res = await call('POST', '/bundles/apply', admin, {
        document: `apiVersion: custodian.dev/v1\nkind: Bundle\nname: x\nactions:\n  - { name: x, object: opportunity, label: X, kind: update, set: { amount: ${value} } }\n`,
        dryRun: true,
      });
      expect([res.status, res.body.code, res.body.details?.issues]).toEqual([
        400,
        'validation_failed',
        [{ path, message: expect.stringContaining('finite number') }],
      ]);
    }
    expect(await counts()).toEqual(before);
  });

  it('each section needs its REST capability: 403 naming it, audited, nothing written; identity re-checks too', async () => {
    const u = await ok(
      call('POST', '/users', admin, { email: 'meta@demo.local', displayName: 'Meta only', password: PASSWORD, roleId: null }),
      201,
    );
    await ok(call('PATCH', `/orgs/${orgId}/members/${u.id}`, admin, { capabilities: ['manage_metadata'] }));
    const token = (await login(base, { email: 'meta@demo.local', password: PASSWORD })).accessToken;
    const before = await counts();
    const doc = { apiVersion: 'custodian.dev/v1', kind: 'Bundle', name: 'x', roles: [{ name: 'sneaky' }], groups: [{ name: 'sneaky' }] };
    const res = await call('POST', '/bundles/apply', token, { bundle: doc, dryRun: true });
    expect([res.status, res.body.code, res.headers.get('content-type')]).toEqual([
      403,
      'forbidden',
      expect.stringContaining('application/problem+json'),
    ]);
    expect(res.body.details.missing).toEqual(['manage_roles', 'manage_users']);
    expect(res.body.detail).toContain('manage_roles');
    const denied = await pg.query(
      `SELECT payload->'details' AS d FROM objects.outbox WHERE payload->>'action' = 'authz.denied' AND payload->'actor'->>'userId' = $1`,
      [u.id],
    );
    expect(denied.rows.map((r) => r.d.missingCapabilities)).toEqual([['manage_roles', 'manage_users']]);
    // objects and actions alone are enough with manage_metadata
    const objectsOnly = await call('POST', '/bundles/apply', token, {
      bundle: { apiVersion: 'custodian.dev/v1', kind: 'Bundle', name: 'x', actions: [] },
      dryRun: true,
    });
    expect(objectsOnly.status).toBe(200);
    expect(await counts()).toEqual(before);
    expect((await call('GET', '/approvals/policies', token)).status).toBe(200);
  });

  it('three users of the demo: exactly which records and fields each sees and may change', async () => {
    const roles = new Map<string, string>((await ok(call('GET', '/roles', admin))).items.map((r: Json) => [r.name, r.id]));
    const sets = new Map<string, string>((await ok(call('GET', '/permission-sets', admin))).items.map((s: Json) => [s.name, s.id]));
    const westTeam = (await ok(call('GET', '/groups', admin))).items.find((g: Json) => g.name === 'west_team').id;
    const users: Record<string, { id: string; token: string }> = {};
    for (const [name, role, setNames] of [
      ['wendy', 'rep_west', ['Sales Rep']],
      ['eric', 'rep_east', ['Sales Rep']],
      ['victor', 'vp_sales', ['Sales Rep', 'Sales Finance']],
    ] as const) {
      const u = await ok(
        call('POST', '/users', admin, { email: `${name}@demo.local`, displayName: name, password: PASSWORD, roleId: roles.get(role) }),
        201,
      );
      for (const s of setNames) await ok(call('POST', `/permission-sets/${sets.get(s)}/assignments`, admin, { userId: u.id }), 201);
      users[name] = { id: u.id, token: '' };
    }
    await ok(call('POST', `/groups/${westTeam}/members`, admin, { userId: users.eric.id }), 201);
    for (const name of Object.keys(users))
      users[name].token = (await login(base, { email: `${name}@demo.local`, password: PASSWORD })).accessToken;

    const west = await ok(call('POST', '/data/account', users.wendy.token, { name: 'West Co', region: 'west' }), 201);
    const north = await ok(call('POST', '/data/account', users.wendy.token, { name: 'North Co', region: 'north' }), 201);
    const opp = await ok(call('POST', '/data/opportunity', users.wendy.token, { name: 'Deal', account: west.id, amount: 1000 }), 201);
    expect(opp.stage).toBe('prospecting');
    expect(opp).not.toHaveProperty('margin');
    await pg.query(`UPDATE objects."r_${orgId.replace(/-/g, '')}_opportunity" SET margin = 0.3 WHERE id = $1`, [opp.id]);
    await ok(call('POST', '/data/opportunity', users.eric.token, { name: 'East deal', amount: 5 }), 201);

    const seen = async (token: string, object: string): Promise<Json[]> =>
      (await ok(call('POST', '/query', token, { object, orderBy: [{ field: 'name' }] }))).items;

    // wendy: her own accounts and opportunity; never the margin
    expect((await seen(users.wendy.token, 'account')).map((r) => r.name)).toEqual(['North Co', 'West Co']);
    const wOpps = await seen(users.wendy.token, 'opportunity');
    expect(wOpps.map((r) => r.name)).toEqual(['Deal']);
    expect(Object.keys(wOpps[0])).not.toContain('margin');
    // eric: West Co through the criteria rule (read only), not North Co; his own deal only
    expect((await seen(users.eric.token, 'account')).map((r) => r.name)).toEqual(['West Co']);
    expect((await call('PATCH', `/data/account/${west.id}`, users.eric.token, { industry: 'x' }, { 'if-match': '"1"' })).status).toBe(403);
    expect((await call('GET', `/data/account/${north.id}`, users.eric.token)).status).toBe(404);
    expect((await seen(users.eric.token, 'opportunity')).map((r) => r.name)).toEqual(['East deal']);
    // victor: everything below him (hierarchy) and every opportunity with its margin (view all + named field)
    expect((await seen(users.victor.token, 'account')).map((r) => r.name)).toEqual(['North Co', 'West Co']);
    const vOpps = await seen(users.victor.token, 'opportunity');
    expect(vOpps.map((r) => [r.name, r.margin ?? null])).toEqual([
      ['Deal', 0.3],
      ['East deal', null],
    ]);
    // victor may edit wendy's account (hierarchy = full) but cannot write the margin (read only)
    expect((await call('PATCH', `/data/account/${west.id}`, users.victor.token, { industry: 'Tech' }, { 'if-match': '"1"' })).status).toBe(
      200,
    );
    const margin = await call('PATCH', `/data/opportunity/${opp.id}`, users.victor.token, { margin: 0.5 }, { 'if-match': '"1"' });
    expect([margin.status, margin.body.code]).toEqual([403, 'field_not_editable']);
    // approval policies are for approvers and metadata managers
    const policies = await call('GET', '/approvals/policies', users.wendy.token);
    expect([policies.status, policies.body.details.missing]).toEqual([403, ['approve_actions', 'manage_metadata']]);
    // actions: a member sees those of objects they may read
    expect((await ok(call('GET', '/meta/objects/opportunity/actions', users.wendy.token))).items.length).toBe(2);
    expect(
      (
        await call(
          'GET',
          '/meta/objects/opportunity/actions',
          (await login(base, { email: 'meta@demo.local', password: PASSWORD })).accessToken,
        )
      ).status,
    ).toBe(200);
  });

  it('every policy-version event says exactly whether a directory event came with it (member.updated both ways)', async () => {
    const u = await ok(call('POST', '/users', admin, { email: 'flag@demo.local', displayName: 'Flag', password: PASSWORD }), 201);
    const roles = new Map<string, string>((await ok(call('GET', '/roles', admin))).items.map((r: Json) => [r.name, r.id]));
    // capabilities only: a member.updated bump without a directory event …
    await ok(call('PATCH', `/orgs/${orgId}/members/${u.id}`, admin, { capabilities: ['view_audit'] }));
    const token = (await login(base, { email: 'flag@demo.local', password: PASSWORD })).accessToken;
    // … which the objects replica does not wait for: answered at once, never 503
    const started = Date.now();
    expect((await call('GET', '/meta/objects', token)).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(900);
    // role change: a member.updated bump with its user_role event
    await ok(call('PATCH', `/orgs/${orgId}/members/${u.id}`, admin, { roleId: roles.get('rep_east') }));
    await ok(call('PATCH', `/roles/${roles.get('rep_east')}`, admin, { name: 'rep_east' }));
    const events = await pg.query(`SELECT subject, payload FROM identity.identity_event WHERE payload->>'orgId' = $1 ORDER BY seq`, [
      orgId,
    ]);
    const directoryVersions = new Set(
      events.rows.filter((r) => r.subject === 'evt.identity.directory').map((r) => Number(r.payload.policyVersion)),
    );
    const bumps = events.rows.filter((r) => r.subject === 'evt.identity.policy-version').map((r) => r.payload);
    expect(bumps.length).toBeGreaterThan(10);
    for (const b of bumps)
      expect([b.reason, b.policyVersion, b.directoryChange]).toEqual([b.reason, b.policyVersion, directoryVersions.has(b.policyVersion)]);
    const memberUpdates = bumps.filter((b) => b.reason === 'member.updated').map((b) => b.directoryChange);
    expect(memberUpdates).toEqual(expect.arrayContaining([true, false]));
    expect(bumps.find((b) => b.reason === 'role.updated' && b.directoryChange === false)).toBeDefined();
  });

  it('actions: a field the caller cannot read never shows in an action; an object they cannot read is 404', async () => {
    // An action that also sets the sensitive margin (wendy, a rep, cannot read it; victor can).
    const doc = {
      apiVersion: 'custodian.dev/v1',
      kind: 'Bundle',
      name: 'margin action',
      actions: [{ name: 'reprice', object: 'opportunity', label: 'Reprice', kind: 'update', set: { stage: 'proposal', margin: 0.1 } }],
    };
    await ok(call('POST', '/bundles/apply', admin, { bundle: doc }));
    const reprice = async (email: string): Promise<Json> =>
      (
        await ok(call('GET', '/meta/objects/opportunity/actions', (await login(base, { email, password: PASSWORD })).accessToken))
      ).items.find((a: Json) => a.name === 'reprice');
    expect((await reprice('wendy@demo.local')).set).toEqual({ stage: 'proposal' });
    expect((await reprice('victor@demo.local')).set).toEqual({ stage: 'proposal', margin: 0.1 });
    // no permission set: the object does not exist for them, like an unknown one
    await ok(call('POST', '/users', admin, { email: 'nobody@demo.local', displayName: 'Nobody', password: PASSWORD }), 201);
    const nobody = (await login(base, { email: 'nobody@demo.local', password: PASSWORD })).accessToken;
    for (const object of ['opportunity', 'nothing']) {
      const res = await call('GET', `/meta/objects/${object}/actions`, nobody);
      expect([object, res.status]).toEqual([object, 404]);
    }
  });
});
