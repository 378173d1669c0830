/**
 * The long differential run: 100,000+ random worlds (default 100k), SQL row filter vs in-memory
 * check on real PostgreSQL (the CI test runs 2,000). Uses the same generator and comparison as
 * libs/policy/test/row-filter.differential.int-spec.ts.
 * Run: node scripts/run-ts.cjs bench/policy/differential.bench.ts   (env POLICY_DIFF_RUNS, POLICY_DIFF_SEED)
 */
import fc from 'fast-check';
import { Client } from 'pg';
import { createTestDatabase } from '../../test/support/database';
import { createTables } from '../../libs/policy/test/support/pg-world';
import { DIFF_OBJECTS, runDifferentialCase, type DiffStats } from '../../libs/policy/test/support/differential';
import { randomWorld } from '../../libs/policy/test/support/random-world';
import { environment, writeResults } from './bench-util';

const RUNS = Number(process.env.POLICY_DIFF_RUNS ?? 100_000);
const SEED = process.env.POLICY_DIFF_SEED ? Number(process.env.POLICY_DIFF_SEED) : Date.now() % 2 ** 31;
const BATCH = 5000;

async function main(): Promise<void> {
  const env = { ...environment(['fast-check', 'pg']), runs: String(RUNS), seed: String(SEED) };
  console.log('environment', env);
  const db = await createTestDatabase('policy_diff_long');
  const client = new Client({ connectionString: db.url });
  await client.connect();
  const stats: DiffStats = { cases: 0, checks: 0, allowed: 0, whereMatches: 0, listChecks: 0 };
  const started = Date.now();
  let seq = 0;
  try {
    await createTables(client, DIFF_OBJECTS);
    // Batches keep the tables small (truncate between batches); each batch has its own seed offset.
    for (let done = 0; done < RUNS; done += BATCH) {
      await fc.assert(
        fc.asyncProperty(randomWorld, async (world) => {
          ++seq;
          await runDifferentialCase(client, world, `o${seq}`, stats, seq % 2 ? 'in' : 'exists');
        }),
        { numRuns: Math.min(BATCH, RUNS - done), seed: SEED + done },
      );
      await client.query('TRUNCATE user_roles, role_closure, group_members, record_shares, obj_acct, obj_item');
      console.log(
        `${stats.cases} cases, ${stats.checks} record checks (${stats.allowed} allowed), ${((Date.now() - started) / 1000).toFixed(0)} s`,
      );
    }
    const summary = { environment: env, ...stats, seconds: (Date.now() - started) / 1000, result: 'no difference' };
    console.log(summary);
    console.log('results written to', writeResults('policy-differential', summary));
  } finally {
    await client.end();
    await db.drop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
