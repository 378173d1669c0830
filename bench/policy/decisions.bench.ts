/**
 * Decision throughput: our cached Decision vs casbin vs @cedar-policy/cedar-wasm (stateful API,
 * preparsed policy set) on equivalent policies. Gate: all three engines agree on every case.
 * Run: node scripts/run-ts.cjs bench/policy/decisions.bench.ts   (env BENCH_RUNS, default 5)
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { newEnforcer, newModelFromString, StringAdapter, type Enforcer } from 'casbin';
import { compileCatalog, compileDecision, InMemoryAccessFacts, type Decision, type PermissionSet, type RecordRow } from '@custodian/policy';
import { environment, fmt, median, nowNs, percentile, printTable, rng, writeResults } from './bench-util';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
type Check = (i: number) => boolean;
interface Scenario {
  name: string;
  queries: number;
  ours: Check;
  casbin: Check;
  cedar: Check;
}

function cedarAllows(answer: cedar.AuthorizationAnswer): boolean {
  if (answer.type !== 'success') throw new Error(`cedar failure: ${JSON.stringify(answer.errors)}`);
  return answer.response.decision === 'allow';
}

function preparse(id: string, text: string): void {
  const r = cedar.preparsePolicySet(id, { staticPolicies: text });
  if (r.type !== 'success') throw new Error(`cedar parse: ${JSON.stringify(r.errors)}`);
}

// ---------- RBAC with N roles ----------
async function rbac(nRoles: number): Promise<Scenario> {
  const r = rng(nRoles);
  const nObjects = 50;
  const nUsers = 200;
  const actions = ['read', 'edit', 'delete'] as const;
  const grants: [number, string, string][] = [];
  for (let i = 0; i < nRoles; i++) {
    grants.push([i, `o${i % nObjects}`, 'read']);
    // Edit and delete imply read (docs/policy.md): each comes with read on its object, so that the
    // plain RBAC models of casbin and cedar grant exactly what ours does.
    const edited = `o${(i * 7 + 3) % nObjects}`;
    grants.push([i, edited, 'edit'], [i, edited, 'read']);
    if (i % 5 === 0) {
      const deleted = `o${(i * 13 + 1) % nObjects}`;
      grants.push([i, deleted, 'delete'], [i, deleted, 'read']);
    }
  }
  const userRoles = Array.from({ length: nUsers }, () => [0, 1, 2].map(() => Math.floor(r() * nRoles)));
  const queries = Array.from({ length: 2000 }, (_, i) => {
    const u = Math.floor(r() * nUsers);
    if (i % 2 === 0) {
      // Half the cases ask for something one of the user's roles grants, so both outcomes are timed.
      const mine = grants.filter(([ri]) => userRoles[u].includes(ri));
      const [, o, a] = mine[Math.floor(r() * mine.length)];
      return { u, o, a: a as (typeof actions)[number] };
    }
    return { u, o: `o${Math.floor(r() * nObjects)}`, a: actions[Math.floor(r() * 3)] };
  });

  // ours: one permission set per role
  const catalog = compileCatalog(
    Array.from({ length: nObjects }, (_, i) => ({ name: `o${i}`, sharingModel: 'public_read_write', fields: [] })),
  );
  const setOf = (role: number): PermissionSet => {
    const objects: Record<string, Record<string, boolean>> = {};
    for (const [ri, o, a] of grants) {
      if (ri !== role) continue;
      const key = a === 'read' ? 'allowRead' : a === 'edit' ? 'allowEdit' : 'allowDelete';
      (objects[o] ??= {})[key] = true;
    }
    return { name: `role${role}`, objects };
  };
  const decisions: Decision[] = userRoles.map((roles, u) =>
    compileDecision(
      {
        userId: `u${u}`,
        orgId: 'org',
        roleId: null,
        ancestorRoleIds: [],
        groupIds: [],
        policyVersion: 1,
        permissionSets: roles.map(setOf),
      },
      catalog,
    ),
  );

  const enforcer = await newEnforcer(
    newModelFromString(`[request_definition]
r = sub, obj, act
[policy_definition]
p = sub, obj, act
[role_definition]
g = _, _
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act`),
    new StringAdapter(
      [
        ...grants.map(([i, o, a]) => `p, role${i}, ${o}, ${a}`),
        ...userRoles.flatMap((roles, u) => roles.map((ri) => `g, u${u}, role${ri}`)),
      ].join('\n'),
    ),
  );

  const psId = `rbac${nRoles}`;
  preparse(
    psId,
    grants.map(([i, o, a]) => `permit(principal in Role::"role${i}", action == Action::"${a}", resource == Obj::"${o}");`).join('\n'),
  );
  const entities = userRoles.map((roles, u) => [
    { uid: { type: 'User', id: `u${u}` }, attrs: {}, parents: roles.map((ri) => ({ type: 'Role', id: `role${ri}` })) },
  ]);

  return {
    name: `RBAC ${nRoles} roles`,
    queries: queries.length,
    ours: (i) => decisions[queries[i].u].can(queries[i].a, queries[i].o),
    casbin: (i) => enforcer.enforceSync(`u${queries[i].u}`, queries[i].o, queries[i].a),
    cedar: (i) =>
      cedarAllows(
        cedar.statefulIsAuthorized({
          principal: { type: 'User', id: `u${queries[i].u}` },
          action: { type: 'Action', id: queries[i].a },
          resource: { type: 'Obj', id: queries[i].o },
          context: {},
          preparsedPolicySetId: psId,
          entities: entities[queries[i].u],
        }),
      ),
  };
}

// ---------- ownership + tenant ----------
async function ownership(): Promise<Scenario> {
  const r = rng(42);
  const nUsers = 100;
  const users = Array.from({ length: nUsers }, (_, u) => ({ id: `u${u}`, org: u % 2 ? 'o1' : 'o2' }));
  const docs: RecordRow[] = Array.from({ length: 1000 }, (_, d) => ({
    id: `d${d}`,
    org_id: r() < 0.5 ? 'o1' : 'o2',
    owner_id: `u${Math.floor(r() * nUsers)}`,
  }));
  const queries = Array.from({ length: 2000 }, () => ({ u: Math.floor(r() * nUsers), d: Math.floor(r() * docs.length) }));
  // Bias half of the queries to the owner so both outcomes are exercised.
  queries.forEach((q, i) => {
    if (i % 2 === 0) q.u = Number(String(docs[q.d].owner_id).slice(1));
  });

  const catalog = compileCatalog([{ name: 'doc', sharingModel: 'private', grantAccessUsingHierarchy: false, fields: [] }]);
  const set: PermissionSet = { name: 'docs', objects: { doc: { allowRead: true } } };
  const decisions = users.map((u) =>
    compileDecision(
      { userId: u.id, orgId: u.org, roleId: null, ancestorRoleIds: [], groupIds: [], policyVersion: 1, permissionSets: [set] },
      catalog,
    ),
  );
  const facts = new InMemoryAccessFacts({});

  const enforcer: Enforcer = await newEnforcer(
    newModelFromString(`[request_definition]
r = sub, obj, act
[policy_definition]
p = act
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = r.act == p.act && r.sub.org == r.obj.org_id && r.sub.id == r.obj.owner_id`),
    new StringAdapter('p, read'),
  );

  preparse(
    'ownership',
    `permit(principal, action == Action::"read", resource) when { resource.org == principal.org && resource.owner == principal };`,
  );
  const userEntity = users.map((u) => ({ uid: { type: 'User', id: u.id }, attrs: { org: u.org }, parents: [] }));
  const docEntity = docs.map((d) => ({
    uid: { type: 'Doc', id: String(d.id) },
    attrs: { org: String(d.org_id), owner: { __entity: { type: 'User', id: String(d.owner_id) } } },
    parents: [],
  }));

  return {
    name: 'ownership + tenant',
    queries: queries.length,
    ours: (i) => decisions[queries[i].u].canRecord('read', 'doc', docs[queries[i].d], facts),
    casbin: (i) => enforcer.enforceSync(users[queries[i].u], docs[queries[i].d], 'read'),
    cedar: (i) =>
      cedarAllows(
        cedar.statefulIsAuthorized({
          principal: { type: 'User', id: users[queries[i].u].id },
          action: { type: 'Action', id: 'read' },
          resource: { type: 'Doc', id: String(docs[queries[i].d].id) },
          context: {},
          preparsedPolicySetId: 'ownership',
          entities: [userEntity[queries[i].u], docEntity[queries[i].d]],
        }),
      ),
  };
}

// ---------- full R1–R5 record model ----------
async function fullModel(): Promise<Scenario> {
  const r = rng(7);
  // role tree: ceo > vp0..vp2 > mgr0..mgr5 > rep0..rep11
  const roleParent: Record<string, string | null> = { ceo: null };
  for (let i = 0; i < 3; i++) roleParent[`vp${i}`] = 'ceo';
  for (let i = 0; i < 6; i++) roleParent[`mgr${i}`] = `vp${i % 3}`;
  for (let i = 0; i < 12; i++) roleParent[`rep${i}`] = `mgr${i % 6}`;
  const roles = Object.keys(roleParent);
  const ancestorsOf = (role: string): string[] => {
    const out: string[] = [];
    for (let p = roleParent[role]; p; p = roleParent[p]) out.push(p);
    return out;
  };
  const nUsers = 120;
  const users = Array.from({ length: nUsers }, (_, u) => ({
    id: `u${u}`,
    org: u % 10 === 9 ? 'other' : 'acme',
    role: roles[Math.floor(r() * roles.length)],
    west: r() < 0.3,
    canRead: r() < 0.85,
    finance: r() < 0.5,
  }));
  const regions = ['west', 'east', 'north', null];
  const deals: RecordRow[] = Array.from({ length: 1000 }, (_, d) => {
    const owner = users[Math.floor(r() * nUsers)];
    return {
      id: `d${d}`,
      org_id: r() < 0.95 ? 'acme' : 'other',
      owner_id: owner.id,
      region: regions[Math.floor(r() * regions.length)],
      amount: Math.floor(r() * 1000),
    };
  });
  const shares = deals.flatMap((d) =>
    r() < 0.3
      ? [0, 1].map(() => ({
          object: 'deal',
          recordId: String(d.id),
          granteeType: 'user' as const,
          granteeId: `u${Math.floor(r() * nUsers)}`,
          accessLevel: 'read' as const,
        }))
      : [],
  );
  const queries = Array.from({ length: 2000 }, () => ({ u: Math.floor(r() * nUsers), d: Math.floor(r() * deals.length) }));

  const catalog = compileCatalog([
    {
      name: 'deal',
      sharingModel: 'private',
      fields: [
        { name: 'region', type: 'string' },
        { name: 'amount', type: 'number', sensitive: true },
      ],
      sharingRules: [
        {
          name: 'west deals',
          type: 'criteria',
          criteria: { region: 'west' },
          sharedWith: { type: 'group', id: 'west' },
          accessLevel: 'read',
        },
      ],
    },
  ]);
  const facts = new InMemoryAccessFacts({
    userRoles: Object.fromEntries(users.map((u) => [u.id, u.role])),
    roleParents: roleParent,
    groupMembers: { west: users.filter((u) => u.west).map((u) => u.id) },
    shares,
  });
  const decisions = users.map((u) =>
    compileDecision(
      {
        userId: u.id,
        orgId: u.org,
        roleId: u.role,
        ancestorRoleIds: ancestorsOf(u.role),
        groupIds: u.west ? ['west'] : [],
        policyVersion: 1,
        permissionSets: [
          ...(u.canRead
            ? [{ name: 'deal reader', objects: { deal: { allowRead: true } }, fields: { deal: { '*': 'read' as const } } }]
            : []),
          // R5: `amount` is sensitive; only the finance set names it.
          ...(u.finance
            ? [{ name: 'finance', objects: { deal: { allowRead: true } }, fields: { deal: { amount: 'read' as const } } }]
            : []),
        ],
      },
      catalog,
    ),
  );
  const ownerRole = new Map(users.map((u) => [u.id, u.role]));
  const readers = new Map<string, string[]>();
  for (const s of shares) readers.set(s.recordId, [...(readers.get(s.recordId) ?? []), s.granteeId]);

  // casbin: g = role tree (child, parent); g2 = group membership; custom function for shares.
  const enforcer = await newEnforcer(
    newModelFromString(`[request_definition]
r = sub, obj, act
[policy_definition]
p = act
[role_definition]
g = _, _
g2 = _, _
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = r.act == p.act && r.sub.org == r.obj.org && g2(r.sub.id, "readers") && (r.act == "read" || g2(r.sub.id, "finance")) && (r.sub.id == r.obj.owner || (r.obj.ownerRole != r.sub.role && g(r.obj.ownerRole, r.sub.role)) || (r.obj.region == "west" && g2(r.sub.id, "west")) || sharedWith(r.obj.readers, r.sub.id))`),
    new StringAdapter(
      [
        'p, read',
        'p, read_amount',
        ...Object.entries(roleParent).flatMap(([c, p]) => (p ? [`g, ${c}, ${p}`] : [])),
        ...users.filter((u) => u.canRead || u.finance).map((u) => `g2, ${u.id}, readers`),
        ...users.filter((u) => u.finance).map((u) => `g2, ${u.id}, finance`),
        ...users.filter((u) => u.west).map((u) => `g2, ${u.id}, west`),
      ].join('\n'),
    ),
  );
  await enforcer.addFunction('sharedWith', (list: string[], id: string) => list.includes(id));
  const casbinSub = users.map((u) => ({ id: u.id, org: u.org, role: u.role }));
  const casbinObj = deals.map((d) => ({
    org: d.org_id,
    owner: d.owner_id,
    ownerRole: ownerRole.get(String(d.owner_id)),
    region: d.region ?? '',
    readers: readers.get(String(d.id)) ?? [],
  }));

  preparse(
    'full',
    `permit(principal in Group::"readers", action in [Action::"read", Action::"read_amount"], resource)
     when { resource.org == principal.org && (action == Action::"read" || principal in Group::"finance") && (
       resource.owner == principal ||
       (resource.ownerRole in principal.role && resource.ownerRole != principal.role) ||
       (resource has region && resource.region == "west" && principal in Group::"west") ||
       resource.readers.contains(principal)) };`,
  );
  const roleEntities = Object.entries(roleParent).map(([id, p]) => ({
    uid: { type: 'Role', id },
    attrs: {},
    parents: p ? [{ type: 'Role', id: p }] : [],
  }));
  const userEntity = users.map((u) => ({
    uid: { type: 'User', id: u.id },
    attrs: { org: u.org, role: { __entity: { type: 'Role', id: u.role } } },
    parents: [
      ...(u.canRead || u.finance ? [{ type: 'Group', id: 'readers' }] : []),
      ...(u.west ? [{ type: 'Group', id: 'west' }] : []),
      ...(u.finance ? [{ type: 'Group', id: 'finance' }] : []),
    ],
  }));
  const dealEntity = deals.map((d) => ({
    uid: { type: 'Deal', id: String(d.id) },
    attrs: {
      org: String(d.org_id),
      owner: { __entity: { type: 'User', id: String(d.owner_id) } },
      ownerRole: { __entity: { type: 'Role', id: String(ownerRole.get(String(d.owner_id))) } },
      ...(d.region ? { region: String(d.region) } : {}),
      readers: (readers.get(String(d.id)) ?? []).map((id) => ({ __entity: { type: 'User', id } })),
    },
    parents: [],
  }));

  return {
    name: 'full R1-R5 record model',
    queries: queries.length,
    // Odd cases also read the sensitive `amount` field (R5).
    ours: (i) => {
      const d = decisions[queries[i].u];
      return d.canRecord('read', 'deal', deals[queries[i].d], facts) && (i % 2 === 0 || d.fieldLevel('deal', 'amount') !== 'none');
    },
    casbin: (i) => enforcer.enforceSync(casbinSub[queries[i].u], casbinObj[queries[i].d], i % 2 ? 'read_amount' : 'read'),
    cedar: (i) =>
      cedarAllows(
        cedar.statefulIsAuthorized({
          principal: { type: 'User', id: users[queries[i].u].id },
          action: { type: 'Action', id: i % 2 ? 'read_amount' : 'read' },
          resource: { type: 'Deal', id: String(deals[queries[i].d].id) },
          context: {},
          preparsedPolicySetId: 'full',
          entities: [userEntity[queries[i].u], dealEntity[queries[i].d], ...roleEntities],
        }),
      ),
  };
}

interface Timing {
  nsPerOp: number;
  opsPerSec: number;
  p50ns: number;
  p99ns: number;
}

/** Median over RUNS of ns/op; p50/p99 from batches of 100 checks (per-check latency is below the timer's resolution). */
function time(check: Check, n: number, minMs: number): Timing {
  for (let i = 0; i < n * 2; i++) check(i % n); // warm-up
  const perRun: number[] = [];
  const batches: number[] = [];
  let nb = 0;
  for (let run = 0; run < RUNS; run++) {
    let ops = 0;
    const start = nowNs();
    let elapsed = 0;
    while (elapsed < minMs * 1e6) {
      for (let b = 0; b < n; b += 100) {
        const end = b + 100 < n ? b + 100 : n;
        const t0 = nowNs();
        for (let i = b; i < end; i++) check(i);
        batches[nb++] = Number(nowNs() - t0) / (end - b);
        ops += end - b;
      }
      elapsed = Number(nowNs() - start);
    }
    perRun[run] = elapsed / ops;
  }
  const nsPerOp = median(perRun);
  return { nsPerOp, opsPerSec: 1e9 / nsPerOp, p50ns: percentile(batches, 50), p99ns: percentile(batches, 99) };
}

const BUILDERS: (() => Promise<Scenario>)[] = [() => rbac(10), () => rbac(100), () => rbac(1000), ownership, fullModel];
type Engine = 'ours' | 'casbin' | 'cedar';

/**
 * Child mode: time one engine on one scenario and print the timing as JSON. Each engine is timed in
 * its own process, one after the other in the same run: the JIT state of one engine cannot slow
 * another down, and Node 20's V8 aborted (deoptimizer "unreachable code") when one process timed
 * all three engines back to back.
 */
async function child(index: number, engine: Engine): Promise<void> {
  const s = await BUILDERS[index]();
  console.log(JSON.stringify(time(s[engine], s.queries, 300)));
}

function runChild(args: string[], v8Flags: string[] = []): { stdout: string; attempts: number } {
  for (let attempt = 1; attempt <= 3; attempt++) {
    const res = spawnSync(process.execPath, [...v8Flags, resolve(__dirname, '../../scripts/run-ts.cjs'), __filename, ...args], {
      encoding: 'utf8',
      maxBuffer: 16 * 1024 * 1024,
    });
    if (res.status === 0) return { stdout: res.stdout.trim(), attempts: attempt };
    const error = res.stderr.split('\n').find((l) => /Error|Fatal|unreachable/.test(l)) ?? '';
    console.error(`child ${args.join(' ')} exited with ${res.status ?? res.signal} ${error}; retrying`);
  }
  throw new Error(`child ${args.join(' ')} failed 3 times`);
}

function lastJson<T>(stdout: string): T {
  const lines = stdout.split('\n');
  return JSON.parse(lines[lines.length - 1]) as T;
}

function timeInChild(index: number, engine: Engine): { timing: Timing; attempts: number } {
  const { stdout, attempts } = runChild(['--time', String(index), engine]);
  return { timing: lastJson<Timing>(stdout), attempts };
}

/** Gate child: every engine must give the same answer on every case. */
async function gate(index: number): Promise<void> {
  const s = await BUILDERS[index]();
  let allowed = 0;
  for (let i = 0; i < s.queries; i++) {
    const a = s.ours(i);
    const b = s.casbin(i);
    const c = s.cedar(i);
    if (a !== b || a !== c) throw new Error(`${s.name}: engines disagree on case ${i}: ours=${a} casbin=${b} cedar=${c}`);
    if (a) allowed++;
  }
  console.log(JSON.stringify({ name: s.name, queries: s.queries, allowed }));
}

async function main(): Promise<void> {
  const env = {
    ...environment(['@casl/ability', 'casbin', '@cedar-policy/cedar-wasm']),
    cedarVersion: cedar.getCedarVersion(),
    runs: String(RUNS),
  };
  console.log('environment', env);
  const rows: Record<string, string | number>[] = [];
  const results: unknown[] = [];
  for (let index = 0; index < BUILDERS.length; index++) {
    // The gate runs without the optimizing compiler (speed is irrelevant there): running all three
    // engines in one optimized process intermittently hit a V8 abort in Node 20.
    const s = lastJson<{ name: string; queries: number; allowed: number }>(runChild(['--gate', String(index)], ['--no-opt']).stdout);
    const allowed = s.allowed;
    console.log(`${s.name}: engines agree on ${s.queries} cases; timing…`);
    const ours = timeInChild(index, 'ours');
    const casbin = timeInChild(index, 'casbin');
    const cedarT = timeInChild(index, 'cedar');
    rows.push({
      scenario: s.name,
      cases: `${s.queries} (${allowed} allow)`,
      'ours ns/op': fmt(ours.timing.nsPerOp),
      'ours p50/p99 ns': `${fmt(ours.timing.p50ns)}/${fmt(ours.timing.p99ns)}`,
      'ours checks/s': fmt(ours.timing.opsPerSec),
      'casbin ns/op': fmt(casbin.timing.nsPerOp),
      'cedar ns/op': fmt(cedarT.timing.nsPerOp),
      'x casbin': fmt(casbin.timing.nsPerOp / ours.timing.nsPerOp, 1),
      'x cedar': fmt(cedarT.timing.nsPerOp / ours.timing.nsPerOp, 1),
    });
    results.push({
      scenario: s.name,
      cases: s.queries,
      allowed,
      ours: ours.timing,
      casbin: casbin.timing,
      cedar: cedarT.timing,
      attempts: { ours: ours.attempts, casbin: casbin.attempts, cedar: cedarT.attempts },
      ratioCasbin: casbin.timing.nsPerOp / ours.timing.nsPerOp,
      ratioCedar: cedarT.timing.nsPerOp / ours.timing.nsPerOp,
    });
  }
  printTable(rows);
  console.log('targets: object-level p50 <= 2000 ns and >= 500k checks/s; >= 20x casbin; >= 100x cedar-wasm');
  console.log('results written to', writeResults('policy-decisions', { environment: env, results }));
}

const [mode, index, engine] = process.argv.slice(2);
(mode === '--time' ? child(Number(index), engine as Engine) : mode === '--gate' ? gate(Number(index)) : main()).catch((error) => {
  console.error(error);
  process.exit(1);
});
