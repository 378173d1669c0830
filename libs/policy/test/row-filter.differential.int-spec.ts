import fc from 'fast-check';
import { Client } from 'pg';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database';
import { createTables } from './support/pg-world';
import { DIFF_OBJECTS, runDifferentialCase, type DiffStats } from './support/differential';
import { randomWorld } from './support/random-world';

// Property: for random policies, role trees, groups, sharing rules, shares and records with NULL
// and missing values, the SQL row filter returns exactly the rows the in-memory check allows
// (read, edit, delete, transfer, share), and a random ObjectQL where selects the same rows in SQL and memory.
const RUNS = Number(process.env.POLICY_DIFF_RUNS ?? 2000);
const SEED = process.env.POLICY_DIFF_SEED ? Number(process.env.POLICY_DIFF_SEED) : undefined;

describe('row filter differential (PostgreSQL vs in-memory)', () => {
  let db: TestDatabase;
  let client: Client;
  let seq = 0;
  const stats: DiffStats = { cases: 0, checks: 0, allowed: 0, whereMatches: 0, listChecks: 0 };

  beforeAll(async () => {
    db = await createTestDatabase('policy_diff');
    client = new Client({ connectionString: db.url });
    await client.connect();
    await createTables(client, DIFF_OBJECTS);
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it(`agrees on ${RUNS} random worlds`, async () => {
    await fc.assert(
      fc.asyncProperty(randomWorld, async (world) => {
        // A fresh org per execution (also per shrink step), so runs never see each other's rows —
        // except through a broken tenant wall, which the comparison would catch.
        // Both SQL shapes (IN-subquery and correlated EXISTS) are checked, alternately.
        ++seq;
        await runDifferentialCase(client, world, `o${seq}`, stats, seq % 2 ? 'in' : 'exists');
      }),
      { numRuns: RUNS, seed: SEED },
    );
    // The property must have exercised both outcomes, or it proves nothing.
    expect(stats.cases).toBeGreaterThanOrEqual(RUNS);
    expect(stats.allowed).toBeGreaterThan(0);
    expect(stats.allowed).toBeLessThan(stats.checks);
    expect(stats.whereMatches).toBeGreaterThan(0);
    expect(stats.listChecks).toBeGreaterThan(0);
  }, 600_000);
});
