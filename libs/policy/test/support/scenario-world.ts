import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import {
  compileCatalog,
  compileDecision,
  InMemoryAccessFacts,
  type Decision,
  type ObjectAction,
  type PermissionSet,
  type PolicyCatalog,
  type PrincipalSnapshot,
  type RecordRow,
  type RecordShare,
} from '@custodian/policy';

/**
 * A scenario file: one small "world" (objects, role tree, users, groups, permission sets, records,
 * shares) and a table of questions with expected answers. Written to be read by non-programmers.
 */
export interface ScenarioFile {
  description: string;
  org: string;
  objects: unknown[];
  directory?: {
    /** role → parent role (null for a root) */
    roles?: Record<string, string | null>;
    /** user → role */
    users?: Record<string, string | null>;
    /** group → members */
    groups?: Record<string, string[]>;
  };
  permissionSets: Record<string, Omit<PermissionSet, 'name'>>;
  principals: Record<string, { permissionSets: string[]; org?: string; agent?: PrincipalSnapshot['agent'] }>;
  records?: Record<string, RecordRow[]>;
  shares?: RecordShare[];
  scenarios: Scenario[];
}

export interface Scenario {
  name: string;
  rule: string;
  as: string;
  action: ObjectAction;
  object: string;
  record?: string;
  field?: string;
  expect: 'allow' | 'deny';
  decidedBy: string;
  source?: string;
}

export interface LoadedWorld {
  file: string;
  spec: ScenarioFile;
  catalog: PolicyCatalog;
  facts: InMemoryAccessFacts;
  decisions: Map<string, Decision>;
  snapshots: Map<string, PrincipalSnapshot>;
  record(object: string, id: string): RecordRow;
}

export const SCENARIO_DIR = join(__dirname, '..', 'scenarios');

export function loadWorlds(): LoadedWorld[] {
  return readdirSync(SCENARIO_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((file) => loadWorld(file, parse(readFileSync(join(SCENARIO_DIR, file), 'utf8')) as ScenarioFile));
}

export function ancestors(roles: Record<string, string | null>, role: string | null): string[] {
  const out: string[] = [];
  for (let p = role ? (roles[role] ?? null) : null; p; p = roles[p] ?? null) out.push(p);
  return out;
}

export function loadWorld(file: string, spec: ScenarioFile): LoadedWorld {
  const catalog = compileCatalog(spec.objects);
  const roles = spec.directory?.roles ?? {};
  const users = spec.directory?.users ?? {};
  const groups = spec.directory?.groups ?? {};
  const facts = new InMemoryAccessFacts({
    userRoles: Object.fromEntries(Object.entries(users).filter((e): e is [string, string] => e[1] !== null)),
    roleParents: roles,
    groupMembers: groups,
    shares: spec.shares ?? [],
    records: spec.records ?? {},
  });
  const decisions = new Map<string, Decision>();
  const snapshots = new Map<string, PrincipalSnapshot>();
  for (const [userId, p] of Object.entries(spec.principals)) {
    const roleId = users[userId] ?? null;
    const snapshot: PrincipalSnapshot = {
      userId,
      orgId: p.org ?? spec.org,
      roleId,
      ancestorRoleIds: ancestors(roles, roleId),
      groupIds: Object.entries(groups)
        .filter(([, members]) => members.includes(userId))
        .map(([g]) => g),
      policyVersion: 1,
      permissionSets: p.permissionSets.map((name) => {
        const set = spec.permissionSets[name];
        if (!set) throw new Error(`${file}: unknown permission set ${name}`);
        return { name, ...set };
      }),
      ...(p.agent ? { agent: p.agent } : {}),
    };
    snapshots.set(userId, snapshot);
    decisions.set(userId, compileDecision(snapshot, catalog));
  }
  return {
    file,
    spec,
    catalog,
    facts,
    decisions,
    snapshots,
    record(object, id) {
      const row = (spec.records?.[object] ?? []).find((r) => r.id === id);
      if (!row) throw new Error(`${file}: unknown record ${object}/${id}`);
      return row;
    },
  };
}
