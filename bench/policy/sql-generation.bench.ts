/**
 * SQL generation time: rowFilter and listFilter (row filter + user where) per query on a cached
 * Decision, with 10 and 10,000 sharing rules on the object; plus the time to compile a Decision.
 * Run: node scripts/run-ts.cjs bench/policy/sql-generation.bench.ts   (env BENCH_RUNS, default 5)
 */
import {
  compileCatalog,
  compileDecision,
  sqlOfPlan,
  type ObjectSecurity,
  type PrincipalSnapshot,
  type SharingRule,
} from '@custodian/policy';
import { environment, fmt, median, nowNs, percentile, printTable, writeResults } from './bench-util';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);

function meta(ruleCount: number): ObjectSecurity {
  const rules: SharingRule[] = [];
  for (let i = 0; i < ruleCount; i++) {
    // Every 1,000th rule applies to the benchmark principal's group; the rest to other teams.
    const mine = i % 1000 === 0;
    rules.push(
      i % 2
        ? {
            name: `r${i}`,
            type: 'owner',
            ownedBy: { type: 'role', id: `role${i % 50}` },
            sharedWith: { type: 'group', id: mine ? 'g1' : `team${i}` },
            accessLevel: 'read',
          }
        : {
            name: `r${i}`,
            type: 'criteria',
            criteria: { region: 'west', amount: { $gte: i } },
            sharedWith: { type: 'group', id: mine ? 'g1' : `team${i}` },
            accessLevel: 'edit',
          },
    );
  }
  return {
    name: 'deal',
    sharingModel: 'private',
    fields: [
      { name: 'region', type: 'string' },
      { name: 'amount', type: 'number' },
      { name: 'stage', type: 'string' },
      { name: 'closed_at', type: 'datetime' },
    ],
    sharingRules: rules,
  };
}

const snapshot: PrincipalSnapshot = {
  userId: 'u1',
  orgId: 'acme',
  roleId: 'mgr',
  ancestorRoleIds: ['vp', 'ceo'],
  groupIds: ['g1', 'g2'],
  policyVersion: 1,
  permissionSets: [{ name: 'sales', objects: { deal: { allowRead: true, allowEdit: true } } }],
};
const where = {
  $or: [{ region: { $in: ['west', 'east'] } }, { amount: { $gte: 100 }, stage: { $ne: 'lost' } }],
  closed_at: { $null: false },
};

function measure(fn: () => unknown, iterations: number): { p50us: number; p99us: number; meanUs: number } {
  for (let i = 0; i < Math.min(1000, iterations); i++) fn();
  const medians: number[] = [];
  const all: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const samples: number[] = [];
    for (let i = 0; i < iterations; i++) {
      const t0 = nowNs();
      fn();
      samples.push(Number(nowNs() - t0) / 1000);
    }
    medians.push(median(samples));
    all.push(...samples);
  }
  return { p50us: median(medians), p99us: percentile(all, 99), meanUs: all.reduce((a, b) => a + b, 0) / all.length };
}

function main(): void {
  const env = { ...environment(['@casl/ability']), runs: String(RUNS) };
  console.log('environment', env);
  const rows: Record<string, string | number>[] = [];
  const results: unknown[] = [];
  for (const count of [10, 10_000]) {
    const catalog = compileCatalog([meta(count)]);
    const build = measure(() => compileDecision(snapshot, catalog), count > 1000 ? 50 : 2000);
    const decision = compileDecision(snapshot, catalog);
    const row = measure(() => decision.rowFilter('read', 'deal'), 10_000);
    const list = measure(() => decision.listFilter('read', 'deal', where), 10_000);
    const sample = decision.listFilter('read', 'deal', where);
    rows.push({
      rules: count,
      'rules for principal': count >= 1000 ? count / 1000 : 1,
      'rowFilter p50/p99 µs': `${fmt(row.p50us)}/${fmt(row.p99us)}`,
      'listFilter (+where) p50/p99 µs': `${fmt(list.p50us)}/${fmt(list.p99us)}`,
      'compile Decision p50 µs': fmt(build.p50us),
      'SQL chars': sqlOfPlan(sample.plan).length,
      params: sample.params.length,
    });
    results.push({ rules: count, rowFilter: row, listFilter: list, compileDecision: build, sqlLength: sqlOfPlan(sample.plan).length });
  }
  printTable(rows);
  console.log('target: SQL generation <= 50 µs per query');
  console.log('results written to', writeResults('policy-sql-generation', { environment: env, results }));
}

main();
