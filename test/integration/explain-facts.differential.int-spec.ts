import fc from 'fast-check';
import { Client, types } from 'pg';
import { compileDecision, createSqlSchema, OBJECT_ACTIONS, quoteIdent, SqlParams, sqlOfPlan, type RecordAction } from '@custodian/policy';
import { loadRecordFacts, type FactsQuery } from '../../apps/objects/src/sharing/record-access-facts.loader';
import { createTables, loadWorld } from '../../libs/policy/test/support/pg-world';
import { buildWorld, DIFF_OBJECTS } from '../../libs/policy/test/support/differential';
import { randomWorld, type RandomWorld } from '../../libs/policy/test/support/random-world';
import { createTestDatabase, type TestDatabase } from '../support/database';

// Property: what POST access/explain answers for a record — the library's explain on the facts that
// loadRecordFacts reads from PostgreSQL — equals the SQL row filter (what lists, GET, PATCH and
// DELETE use) and the in-memory check on the whole world, for every action, over random worlds
// whose detail records reach their masters through shares, rules, the hierarchy or ownership.
const RUNS = Number(process.env.EXPLAIN_FACTS_RUNS ?? 150);
const SEED = process.env.EXPLAIN_FACTS_SEED ? Number(process.env.EXPLAIN_FACTS_SEED) : undefined;
const ACTIONS = OBJECT_ACTIONS.filter((a): a is RecordAction => a !== 'create');

/** Half of the worlds make `item` a detail of `acct`. */
const worlds: fc.Arbitrary<RandomWorld> = fc
  .tuple(randomWorld, fc.boolean())
  .map(([w, detail]) => (detail ? { ...w, item: { ...w.item, sharingModel: 'controlled_by_parent' as const } } : w));

describe('explain on facts read from PostgreSQL agrees with the SQL row filter', () => {
  let db: TestDatabase;
  let client: Client;
  let seq = 0;
  const seen = { checks: 0, allowed: 0, viaMaster: 0 };

  beforeAll(async () => {
    db = await createTestDatabase('explain_facts');
    // The harness stores integers as bigint, which node-pg answers as strings; the objects service
    // stores numbers as double precision, answered as numbers. Read bigint as a number here too.
    client = new Client({
      connectionString: db.url,
      types: {
        getTypeParser: ((oid: number, format?: string) => (oid === 20 ? Number : types.getTypeParser(oid, format as 'text'))) as never,
      },
    });
    await client.connect();
    await createTables(client, DIFF_OBJECTS);
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it(`on ${RUNS} random worlds, for every action`, async () => {
    const query: FactsQuery = async (text, params) => (await client.query(text, params)).rows;
    const schema = createSqlSchema();
    await fc.assert(
      fc.asyncProperty(worlds, async (w) => {
        const org = `e${++seq}`;
        const built = buildWorld(w, org);
        await loadWorld(client, {
          orgId: org,
          userRoles: w.userRoles,
          groupMembers: w.groupMembers,
          facts: built.facts,
          shares: built.shares,
          records: built.byObject,
        });
        const decisions = w.principals.map((_p, pi) => compileDecision(built.snapshot(pi), built.catalog));
        // Everything the row filters select, in one statement.
        const params = new SqlParams();
        const selects: string[] = [];
        decisions.forEach((decision, pi) => {
          for (const { name } of DIFF_OBJECTS)
            for (const action of ACTIONS) {
              const filter = decision.rowFilter(action, name, { alias: 't', paramOffset: params.values.length });
              params.values.push(...filter.params);
              selects.push(
                `SELECT '${pi}:${name}:${action}'::text AS k, t.id FROM ${quoteIdent(`obj_${name}`)} t WHERE ${sqlOfPlan(filter.plan)}`,
              );
            }
        });
        const { rows } = await client.query<{ k: string; id: string }>(selects.join('\nUNION ALL\n'), params.values);
        const inSql = new Set(rows.map((r) => `${r.k}:${r.id}`));

        for (const { name } of DIFF_OBJECTS) {
          for (const row of built.byObject[name]) {
            const id = String(row.id);
            const loaded = await loadRecordFacts(query, schema, built.catalog, org, name, id);
            if (!loaded) {
              if (row.org_id === org) throw new Error(`${name} ${id} of the org was not loaded`);
              continue; // another org's record: the API answers 404 before explaining
            }
            decisions.forEach((decision, pi) => {
              for (const action of ACTIONS) {
                const explained = decision.explain({ action, object: name, record: loaded.record, facts: loaded.facts });
                const sql = inSql.has(`${pi}:${name}:${action}:${id}`);
                const memory = decision.canRecord(action, name, row, built.facts);
                seen.checks++;
                if (explained.allowed !== sql || memory !== sql)
                  throw new Error(
                    `${action} ${name} ${id} as p${pi}: sql ${sql}, memory ${memory}, explain ${JSON.stringify(explained)} on ${JSON.stringify(loaded.record)}`,
                  );
                if (sql) seen.allowed++;
                if (sql && explained.decidedBy === 'parent') seen.viaMaster++;
              }
            });
          }
        }
      }),
      { numRuns: RUNS, seed: SEED },
    );
    expect(seen.allowed).toBeGreaterThan(0);
    expect(seen.allowed).toBeLessThan(seen.checks);
    expect(seen.viaMaster).toBeGreaterThan(0);
  }, 600_000);
});
