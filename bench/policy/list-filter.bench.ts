/**
 * List filter on ~1M records (one org; plus 10% of rows in another org): our generated row filter
 * vs the best hand-written SQL vs post-filtering in the application, first page and a deep page,
 * p50/p99, result equality; and the generated filter with 10 vs 10,000 sharing rules.
 * Run: node scripts/run-ts.cjs bench/policy/list-filter.bench.ts
 * Env: BENCH_RECORDS (default 1111111 → ~1M in the org), BENCH_ITER (default 200), BENCH_POST_ITER (5).
 */
import { Client } from 'pg';
import { createTestDatabase } from '../../test/support/database';
import {
  compileCatalog,
  compileDecision,
  InMemoryAccessFacts,
  sqlOfPlan,
  type Decision,
  type ObjectSecurity,
  type PrincipalSnapshot,
  type RecordRow,
  type RecordShare,
  type SharingRule,
} from '@custodian/policy';
import { environment, fmt, median, nowNs, percentile, printTable, rng, writeResults } from './bench-util';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 1_111_111);
const ITER = Number(process.env.BENCH_ITER ?? 200);
const POST_ITER = Number(process.env.BENCH_POST_ITER ?? 5);
const PAGE = 50;
const DEEP_OFFSET = 5000;

// Role tree: r0 > r1..r4 > r5..r20 > r21..r84. Users u0..u1999 (u0 = heavy owner, a level-2 manager).
const roleParent: Record<string, string | null> = { r0: null };
for (let i = 1; i <= 4; i++) roleParent[`r${i}`] = 'r0';
for (let i = 5; i <= 20; i++) roleParent[`r${i}`] = `r${1 + ((i - 5) % 4)}`;
for (let i = 21; i <= 84; i++) roleParent[`r${i}`] = `r${5 + ((i - 21) % 16)}`;
const NUSERS = 2000;
const r = rng(99);
const userRole: Record<string, string> = {};
for (let u = 0; u < NUSERS; u++) userRole[`u${u}`] = u === 0 ? 'r5' : `r${21 + Math.floor(r() * 64)}`;
const groups: Record<string, string[]> = {};
for (let g = 0; g < 20; g++)
  groups[`g${g}`] = Array.from({ length: NUSERS }, (_, u) => `u${u}`).filter((_, u) => (u === 0 ? g === 1 : r() < 0.05));
const ancestors = (role: string): string[] => {
  const out: string[] = [];
  for (let p = roleParent[role]; p; p = roleParent[p]) out.push(p);
  return out;
};

function objectMeta(ruleCount: number): ObjectSecurity {
  const rules: SharingRule[] = [
    {
      name: 'west closed deals to g1',
      type: 'criteria',
      criteria: { region: 'west', stage: 'closed' },
      sharedWith: { type: 'group', id: 'g1' },
      accessLevel: 'read',
    },
    {
      name: 'big amounts to r5 and up',
      type: 'criteria',
      criteria: { amount: { $gte: 9990 } },
      sharedWith: { type: 'role_and_subordinates', id: 'r1' },
      accessLevel: 'read',
    },
    {
      name: 'g2 owners to g1',
      type: 'owner',
      ownedBy: { type: 'group', id: 'g2' },
      sharedWith: { type: 'group', id: 'g1' },
      accessLevel: 'edit',
    },
  ];
  // The rest of the rules target other teams and users (as in a real org with many teams); they are
  // pruned when a principal's decision is compiled, which is what keeps the SQL small.
  for (let i = rules.length; i < ruleCount; i++) {
    rules.push(
      i % 2
        ? {
            name: `rule ${i}`,
            type: 'criteria',
            criteria: { region: ['west', 'east', 'north', 'south'][i % 4], amount: { $gt: i % 10000 } },
            sharedWith: { type: 'group', id: `team${i}` },
            accessLevel: 'read',
          }
        : {
            name: `rule ${i}`,
            type: 'owner',
            ownedBy: { type: 'role', id: `r${21 + (i % 64)}` },
            sharedWith: { type: 'user', id: `x${i}` },
            accessLevel: 'read',
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
    ],
    sharingRules: rules,
  };
}

function snapshot(userId: string): PrincipalSnapshot {
  const roleId = userRole[userId];
  return {
    userId,
    orgId: 'acme',
    roleId,
    ancestorRoleIds: ancestors(roleId),
    groupIds: Object.entries(groups)
      .filter(([, m]) => m.includes(userId))
      .map(([g]) => g),
    policyVersion: 1,
    permissionSets: [{ name: 'deal reader', objects: { deal: { allowRead: true, allowEdit: true } } }],
  };
}

/** The best SQL we could write by hand for the same access (uncorrelated IN subqueries → hashed). */
function handWritten(s: PrincipalSnapshot): { text: string; params: unknown[] } {
  return {
    text: `t.org_id = $1 AND (
      t.owner_id = $2
      OR t.owner_id IN (SELECT ur.user_id FROM user_roles ur JOIN role_closure rc ON rc.org_id = ur.org_id AND rc.descendant_id = ur.role_id
                         WHERE ur.org_id = $1 AND rc.ancestor_id = $3 AND rc.depth > 0)
      ${s.groupIds.includes('g1') ? `OR (t.region = 'west' AND t.stage = 'closed')` : ''}
      ${[s.roleId, ...s.ancestorRoleIds].includes('r1') ? `OR t.amount >= 9990` : ''}
      ${s.groupIds.includes('g1') ? `OR t.owner_id IN (SELECT gm.user_id FROM group_members gm WHERE gm.org_id = $1 AND gm.group_id = 'g2')` : ''}
      OR t.id IN (SELECT sh.record_id FROM record_shares sh WHERE sh.org_id = $1 AND sh.object_name = 'deal'
                   AND ((sh.grantee_type = 'user' AND sh.grantee_id = $2) OR (sh.grantee_type = 'group' AND sh.grantee_id = ANY($4))
                     OR (sh.grantee_type = 'role' AND sh.grantee_id = $3) OR (sh.grantee_type = 'role_and_subordinates' AND sh.grantee_id = ANY($5)))))`,
    params: ['acme', s.userId, s.roleId, s.groupIds, [s.roleId, ...s.ancestorRoleIds]],
  };
}

async function setup(client: Client): Promise<void> {
  const started = Date.now();
  await client.query(`
    CREATE TABLE user_roles (org_id text NOT NULL, user_id text NOT NULL, role_id text NOT NULL, PRIMARY KEY (org_id, user_id));
    CREATE TABLE role_closure (org_id text NOT NULL, ancestor_id text NOT NULL, descendant_id text NOT NULL, depth int NOT NULL, PRIMARY KEY (org_id, ancestor_id, descendant_id));
    CREATE INDEX ON role_closure (org_id, descendant_id);
    CREATE TABLE group_members (org_id text NOT NULL, group_id text NOT NULL, user_id text NOT NULL, PRIMARY KEY (org_id, group_id, user_id));
    CREATE INDEX ON group_members (org_id, user_id);
    CREATE TABLE record_shares (org_id text NOT NULL, object_name text NOT NULL, record_id text NOT NULL, grantee_type text NOT NULL, grantee_id text NOT NULL, access_level text NOT NULL);
    CREATE TABLE obj_deal (id text PRIMARY KEY, org_id text NOT NULL, owner_id text, region text, amount double precision, stage text);
  `);
  const closure: unknown[] = [];
  for (const role of Object.keys(roleParent)) {
    closure.push({ org_id: 'acme', ancestor_id: role, descendant_id: role, depth: 0 });
    ancestors(role).forEach((a, i) => closure.push({ org_id: 'acme', ancestor_id: a, descendant_id: role, depth: i + 1 }));
  }
  await client.query(`INSERT INTO role_closure SELECT * FROM json_populate_recordset(NULL::role_closure, $1)`, [JSON.stringify(closure)]);
  await client.query(`INSERT INTO user_roles SELECT * FROM json_populate_recordset(NULL::user_roles, $1)`, [
    JSON.stringify(Object.entries(userRole).map(([user_id, role_id]) => ({ org_id: 'acme', user_id, role_id }))),
  ]);
  await client.query(`INSERT INTO group_members SELECT * FROM json_populate_recordset(NULL::group_members, $1)`, [
    JSON.stringify(Object.entries(groups).flatMap(([group_id, m]) => m.map((user_id) => ({ org_id: 'acme', group_id, user_id })))),
  ]);
  await client.query(`SELECT setseed(0.42)`);
  // Ownership skew: u0 owns every 50th record (≥ 20k); the rest are skewed towards low user ids.
  // Nullable attributes: region NULL 20%, amount NULL 30%, stage NULL 10%.
  await client.query(
    `INSERT INTO obj_deal (id, org_id, owner_id, region, amount, stage)
     SELECT 'd' || lpad(g::text, 8, '0'),
            CASE WHEN g % 10 = 0 THEN 'other' ELSE 'acme' END,
            CASE WHEN g % 50 = 1 THEN 'u0' ELSE 'u' || (1 + floor(power(random(), 2) * ${NUSERS - 1}))::int END,
            CASE WHEN random() < 0.2 THEN NULL ELSE (ARRAY['west','east','north','south'])[1 + floor(random() * 4)::int] END,
            CASE WHEN random() < 0.3 THEN NULL ELSE round((random() * 10000)::numeric, 2)::float8 END,
            CASE WHEN random() < 0.1 THEN NULL ELSE (ARRAY['open','closed','lost'])[1 + floor(random() * 3)::int] END
     FROM generate_series(1, ${RECORDS}) g`,
  );
  // Multi-share records: ~8% of records carry 1–3 shares to users, groups, roles.
  await client.query(
    `INSERT INTO record_shares
     SELECT 'acme', 'deal', d.id, gt, CASE gt WHEN 'user' THEN 'u' || floor(random() * ${NUSERS})::int WHEN 'group' THEN 'g' || floor(random() * 20)::int
                                         WHEN 'role' THEN 'r' || floor(random() * 85)::int ELSE 'r' || floor(random() * 21)::int END,
            CASE WHEN random() < 0.5 THEN 'read' ELSE 'edit' END
     FROM (SELECT id FROM obj_deal WHERE org_id = 'acme' AND random() < 0.08) d,
          LATERAL (SELECT (ARRAY['user','user','user','group','role','role_and_subordinates'])[1 + floor(random() * 6)::int] AS gt
                   FROM generate_series(1, 1 + floor(random() * 3)::int + (d.id IS NULL)::int)) k`,
  );
  // Realistic indexes: tenant + key, tenant + owner, attributes used by rules, shares by record and by grantee.
  await client.query(`
    CREATE INDEX ON obj_deal (org_id, id);
    CREATE INDEX ON obj_deal (org_id, owner_id);
    CREATE INDEX ON obj_deal (org_id, region, stage);
    CREATE INDEX ON record_shares (org_id, object_name, record_id);
    CREATE INDEX ON record_shares (org_id, grantee_type, grantee_id, object_name) INCLUDE (record_id);
    ANALYZE;
  `);
  const { rows } =
    await client.query(`SELECT (SELECT count(*) FROM obj_deal WHERE org_id='acme') AS records, (SELECT count(*) FROM obj_deal WHERE owner_id='u0') AS u0,
    (SELECT count(*) FROM record_shares) AS shares, (SELECT count(*) FROM (SELECT record_id FROM record_shares GROUP BY 1 HAVING count(*) > 1) x) AS multi`);
  console.log(`data: ${JSON.stringify(rows[0])} loaded in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function timed(client: Client, sql: string, params: unknown[]): Promise<{ ms: number; ids: string[] }> {
  const t0 = nowNs();
  const res = await client.query<{ id: string }>(sql, params);
  return { ms: Number(nowNs() - t0) / 1e6, ids: res.rows.map((x) => x.id) };
}

/** Post-filtering: stream the org's rows in id order, check each in memory, stop when the page is full. */
async function postFilter(
  client: Client,
  decision: Decision,
  facts: InMemoryAccessFacts & { setShares?: (s: RecordShare[]) => void },
  offset: number,
  directory: DirectoryCache,
): Promise<{ ms: number; ids: string[] }> {
  const t0 = nowNs();
  const out: string[] = [];
  let skipped = 0;
  let after = '';
  for (;;) {
    const { rows } = await client.query<RecordRow & { id: string }>(
      `SELECT id, org_id, owner_id, region, amount, stage FROM obj_deal WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT 5000`,
      ['acme', after],
    );
    if (rows.length === 0) break;
    const shareRows = await client.query<{
      record_id: string;
      grantee_type: RecordShare['granteeType'];
      grantee_id: string;
      access_level: 'read' | 'edit';
    }>(
      `SELECT record_id, grantee_type, grantee_id, access_level FROM record_shares WHERE org_id = $1 AND object_name = 'deal' AND record_id = ANY($2)`,
      ['acme', rows.map((x) => x.id)],
    );
    const batchFacts = directory.withShares(
      shareRows.rows.map((s) => ({
        object: 'deal',
        recordId: s.record_id,
        granteeType: s.grantee_type,
        granteeId: s.grantee_id,
        accessLevel: s.access_level,
      })),
    );
    for (const row of rows) {
      const clean: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(row)) if (v !== null) clean[k] = v;
      if (decision.canRecord('read', 'deal', clean, batchFacts)) {
        if (skipped < offset) skipped++;
        else out.push(row.id);
        if (out.length === PAGE) return { ms: Number(nowNs() - t0) / 1e6, ids: out };
      }
    }
    after = rows[rows.length - 1].id;
  }
  void facts;
  return { ms: Number(nowNs() - t0) / 1e6, ids: out };
}

class DirectoryCache {
  constructor(
    private readonly base: {
      userRoles: Record<string, string>;
      roleParents: Record<string, string | null>;
      groupMembers: Record<string, string[]>;
    },
  ) {}
  withShares(shares: RecordShare[]): InMemoryAccessFacts {
    return new InMemoryAccessFacts({ ...this.base, shares });
  }
}

async function planShape(client: Client, sql: string, params: unknown[]): Promise<string> {
  const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params);
  return rows
    .map((x) => x['QUERY PLAN'])
    .filter((l) => /Scan|SubPlan|Join|Limit|Sort/.test(l))
    .map((l) =>
      l
        .trim()
        .replace(/\s+\(cost.*$/, '')
        .replace(/ on \S+.*$/, '')
        .replace(/ using \S+/, ''),
    )
    .join(' > ');
}

async function main(): Promise<void> {
  const env: Record<string, string> = {
    ...environment(['pg', '@casl/ability']),
    records: String(RECORDS),
    iterations: String(ITER),
    postIterations: String(POST_ITER),
  };
  const db = await createTestDatabase('bench_list');
  const client = new Client({ connectionString: db.url });
  await client.connect();
  try {
    const ver = await client.query<{ v: string }>('SELECT version() AS v');
    env.postgres = ver.rows[0].v.split(' on ')[0];
    console.log('environment', env);
    await setup(client);
    const cat10 = compileCatalog([objectMeta(10)]);
    const cat10k = compileCatalog([objectMeta(10_000)]);
    const directory = new DirectoryCache({ userRoles: userRole, roleParents: roleParent, groupMembers: groups });
    const principals = [
      { label: 'manager u0 (heavy owner)', userId: 'u0' },
      { label: 'rep u1777 (sparse)', userId: 'u1777' },
    ];
    const rows: Record<string, string | number>[] = [];
    const results: unknown[] = [];
    for (const p of principals) {
      const snap = snapshot(p.userId);
      const d10 = compileDecision(snap, cat10);
      const d10k = compileDecision(snap, cat10k);
      for (const page of [
        { label: 'first page', offset: 0 },
        { label: `deep page (offset ${DEEP_OFFSET})`, offset: DEEP_OFFSET },
      ]) {
        const tail = `ORDER BY t.id LIMIT ${PAGE} OFFSET ${page.offset}`;
        const gen10 = d10.rowFilter('read', 'deal');
        const gen10k = d10k.rowFilter('read', 'deal');
        const hand = handWritten(snap);
        const queries = {
          generated: { sql: `SELECT t.id FROM obj_deal t WHERE ${sqlOfPlan(gen10.plan)} ${tail}`, params: gen10.params as unknown[] },
          'generated 10k rules': {
            sql: `SELECT t.id FROM obj_deal t WHERE ${sqlOfPlan(gen10k.plan)} ${tail}`,
            params: gen10k.params as unknown[],
          },
          'hand-written': { sql: `SELECT t.id FROM obj_deal t WHERE ${hand.text} ${tail}`, params: hand.params },
        };
        const times: Record<string, number[]> = { generated: [], 'generated 10k rules': [], 'hand-written': [], 'post-filter': [] };
        const reference = await timed(client, queries['hand-written'].sql, queries['hand-written'].params);
        // Equality gate: every approach returns exactly the same page.
        for (const [name, q] of Object.entries(queries)) {
          const res = await timed(client, q.sql, q.params);
          if (JSON.stringify(res.ids) !== JSON.stringify(reference.ids))
            throw new Error(`${p.label} ${page.label}: ${name} differs from hand-written`);
        }
        const post = await postFilter(client, d10, directory.withShares([]), page.offset, directory);
        if (JSON.stringify(post.ids) !== JSON.stringify(reference.ids))
          throw new Error(`${p.label} ${page.label}: post-filter differs from hand-written`);
        // Interleave the SQL variants so that machine noise hits them alike.
        for (let i = 0; i < ITER; i++) {
          for (const [name, q] of Object.entries(queries)) times[name].push((await timed(client, q.sql, q.params)).ms);
        }
        for (let i = 0; i < POST_ITER; i++)
          times['post-filter'].push((await postFilter(client, d10, directory.withShares([]), page.offset, directory)).ms);
        const stat = (name: string) => ({ p50: median(times[name]), p99: percentile(times[name], 99) });
        const g = stat('generated');
        const gk = stat('generated 10k rules');
        const h = stat('hand-written');
        const pf = stat('post-filter');
        const planGen = await planShape(client, queries.generated.sql, queries.generated.params);
        const planHand = await planShape(client, queries['hand-written'].sql, queries['hand-written'].params);
        rows.push({
          principal: p.label,
          page: page.label,
          rows: reference.ids.length,
          'generated p50/p99 ms': `${fmt(g.p50)}/${fmt(g.p99)}`,
          'hand p50/p99 ms': `${fmt(h.p50)}/${fmt(h.p99)}`,
          'gen/hand p50': fmt(g.p50 / h.p50),
          'gen/hand p99': fmt(g.p99 / h.p99),
          '10k rules p50/p99 ms': `${fmt(gk.p50)}/${fmt(gk.p99)}`,
          '10k/10 p99': fmt(gk.p99 / g.p99),
          'post-filter p50/p99 ms': `${fmt(pf.p50)}/${fmt(pf.p99)}`,
          'post/gen p50': fmt(pf.p50 / g.p50, 1),
          'same plan': planGen === planHand ? 'yes' : 'no',
          '10k SQL = 10 SQL': sqlOfPlan(gen10k.plan) === sqlOfPlan(gen10.plan) ? 'yes' : 'no',
        });
        results.push({
          principal: p.label,
          page: page.label,
          rows: reference.ids.length,
          generated: g,
          generated10kRules: gk,
          handWritten: h,
          postFilter: pf,
          planGenerated: planGen,
          planHandWritten: planHand,
          sqlGenerated: queries.generated.sql,
        });
        if (planGen !== planHand) console.log(`plan generated: ${planGen}\nplan hand:      ${planHand}`);
      }
    }
    printTable(rows);
    console.log(
      'targets: generated within 1.2x of hand-written p50 and p99 with the same plan shape; p99 at 10,000 rules <= 2x of 10 rules',
    );
    console.log('results written to', writeResults('policy-list-filter', { environment: env, results }));
  } finally {
    await client.end();
    await db.drop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
