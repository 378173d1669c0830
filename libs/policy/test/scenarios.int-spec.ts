import { Client } from 'pg';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database';
import { sqlOfPlan, type ObjectSecurity } from '@custodian/policy';
import { createTables, loadWorld } from './support/pg-world';
import { loadWorlds } from './support/scenario-world';

// The same scenario tables, answered by the SQL row filter on real PostgreSQL: SQL and the
// in-memory check must agree with the expected decision for every record scenario.
const worlds = loadWorlds();

describe.each(worlds.map((w) => [w.file, w] as const))('scenario table %s in SQL', (_file, world) => {
  let db: TestDatabase;
  let client: Client;

  beforeAll(async () => {
    db = await createTestDatabase('policy_scen');
    client = new Client({ connectionString: db.url });
    await client.connect();
    await createTables(client, world.spec.objects as ObjectSecurity[]);
    const users = world.spec.directory?.users ?? {};
    await loadWorld(client, {
      orgId: world.spec.org,
      userRoles: Object.fromEntries(Object.entries(users).filter((e): e is [string, string] => e[1] !== null)),
      groupMembers: world.spec.directory?.groups ?? {},
      facts: world.facts,
      shares: world.spec.shares ?? [],
      records: world.spec.records ?? {},
    });
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  const recordScenarios = world.spec.scenarios.filter(
    (s) => s.record && s.action !== 'create' && (s.field === undefined || s.expect === 'allow'),
  );
  it.each(recordScenarios.map((s) => [`${s.rule}: ${s.name}`, s] as const))('%s', async (_name, s) => {
    const decision = world.decisions.get(s.as)!;
    const filter = decision.rowFilter(s.action as 'read', s.object, { alias: 't', paramOffset: 1 });
    const { rows } = await client.query(`SELECT t.id FROM "obj_${s.object}" t WHERE t.id = $1 AND ${sqlOfPlan(filter.plan)}`, [
      s.record,
      ...filter.params,
    ]);
    expect(rows.length === 1).toBe(s.expect === 'allow');
  });
});
