import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { applyBundleDocument } from '../../apps/objects/src/cli/apply-bundle';
import { apiClient, type Json } from '../support/api';
import { login, startTestHost, type TestHost } from '../support/host';

const PASSWORD = 'a-long-enough-password';
const DEMO = readFileSync(path.join(__dirname, '../../apps/objects/bundles/demo-crm.yaml'), 'utf8');

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

  it('dry-run returns the diff and writes nothing; apply is idempotent', async () => {
    const dry = await applyBundleDocument(base, admin, DEMO, true);
    expect(dry.objects.changes.filter((c: Json) => c.change === 'create').map((c: Json) => c.name)).toEqual([
      'account',
      'contact',
      'opportunity',
    ]);
    expect(dry.identity.filter((c) => c.change === 'create').length).toBe(6);
    expect((await ok(call('GET', '/meta/objects', admin))).objects).toEqual([]);
    const applied = await applyBundleDocument(base, admin, DEMO);
    expect(applied.objects.changes.map((c: Json) => `${c.kind}:${c.name}:${c.change}`)).toEqual([
      'object:account:create',
      'object:contact:create',
      'object:opportunity:create',
      'sharing_rules:account:update',
    ]);
    const again = await applyBundleDocument(base, admin, DEMO);
    expect(again.objects.changes.every((c: Json) => c.change === 'unchanged')).toBe(true);
    expect(again.identity.every((c) => c.change === 'unchanged')).toBe(true);
    const audit = await pg.query(`SELECT count(*)::int AS n FROM objects.outbox WHERE payload->>'action' = 'objects.bundle.applied'`);
    expect(audit.rows[0].n).toBe(2);
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
      for (const s of setNames) await ok(call('POST', `/permission-sets/${sets.get(s)}/assignments`, admin, { userId: u.userId }), 201);
      users[name] = { id: u.userId, token: '' };
    }
    await ok(call('POST', `/groups/${westTeam}/members`, admin, { userId: users.eric.id }), 204);
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
      (await ok(call('POST', '/query', token, { object, orderBy: [{ field: 'name' }] }))).records;

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
  });
});
