import type { Client } from 'pg';
import {
  compileCatalog,
  compileDecision,
  compileWhereSql,
  createSqlSchema,
  evaluateWhere,
  InMemoryAccessFacts,
  isPolicyError,
  parseWhere,
  quoteIdent,
  SqlParams,
  sqlOfPlan,
  type ObjectSecurity,
  type PolicyCatalog,
  type PrincipalSnapshot,
  type RecordAction,
  type RecordRow,
  type RecordShare,
  type WhereNode,
} from '@custodian/policy';
import { ancestors } from './scenario-world';
import { loadWorld } from './pg-world';
import { ACCT_FIELDS, ITEM_FIELDS, type RandomWorld } from './random-world';

export const DIFF_ACTIONS: readonly RecordAction[] = ['read', 'edit', 'delete', 'transfer', 'share'];
export const DIFF_OBJECTS = [
  { name: 'acct', fields: ACCT_FIELDS },
  { name: 'item', fields: ITEM_FIELDS },
] as const;

export interface DiffStats {
  cases: number;
  /** Record checks through listFilter (row filter AND the principal's own where). */
  listChecks: number;
  checks: number;
  allowed: number;
  whereMatches: number;
}

/** A random world made concrete for one org: catalog, records, shares and in-memory directory facts. */
export interface BuiltWorld {
  readonly catalog: PolicyCatalog;
  readonly facts: InMemoryAccessFacts;
  readonly byObject: Record<string, RecordRow[]>;
  readonly shares: RecordShare[];
  /** The principal's snapshot (agent delegation included) by index in `w.principals`. */
  snapshot(index: number): PrincipalSnapshot;
}

/** Assigns ids and the org (or a foreign org) to the world's records and compiles its catalog. */
export function buildWorld(w: RandomWorld, org: string): BuiltWorld {
  const foreignOrg = `${org}x`;
  const acctRows: RecordRow[] = w.accts.map((a, i) => ({ ...a.row, id: `${org}_a${i}`, org_id: a.foreign ? foreignOrg : org }));
  const itemRows: RecordRow[] = w.items.map((it, i) => ({
    ...it.row,
    id: `${org}_i${i}`,
    org_id: it.foreign ? foreignOrg : org,
    acct_id: it.parent === null ? null : it.parent < acctRows.length ? acctRows[it.parent].id : `${org}_missing`,
  }));
  const byObject: Record<string, RecordRow[]> = { acct: acctRows, item: itemRows };
  const shares: RecordShare[] = w.shares.flatMap((s) => {
    const rows = byObject[s.object];
    if (rows.length === 0) return [];
    return [
      {
        object: s.object,
        recordId: String(rows[s.index % rows.length].id),
        granteeType: s.grantee.type,
        granteeId: s.grantee.id,
        accessLevel: s.accessLevel,
      },
    ];
  });
  const objects: ObjectSecurity[] = [
    {
      name: 'acct',
      fields: [...ACCT_FIELDS],
      sharingModel: w.acct.sharingModel,
      grantAccessUsingHierarchy: w.acct.hierarchy,
      sharingRules: w.acct.rules,
    },
    {
      name: 'item',
      fields: [...ITEM_FIELDS],
      sharingModel: w.item.sharingModel,
      ...(w.item.sharingModel === 'controlled_by_parent' ? { masterDetailField: 'acct_id' } : {}),
      grantAccessUsingHierarchy: w.item.hierarchy,
      sharingRules: w.item.rules,
    },
  ];
  const catalog = compileCatalog(objects);
  const facts = new InMemoryAccessFacts({
    userRoles: w.userRoles,
    roleParents: w.roleParents,
    groupMembers: w.groupMembers,
    shares,
    records: byObject,
  });
  return {
    catalog,
    facts,
    byObject,
    shares,
    snapshot(index) {
      const p = w.principals[index];
      const roleId = w.userRoles[p.userId] ?? null;
      return {
        userId: p.userId,
        orgId: org,
        roleId,
        ancestorRoleIds: ancestors(w.roleParents, roleId),
        groupIds: Object.entries(w.groupMembers)
          .filter(([, m]) => m.includes(p.userId))
          .map(([g]) => g),
        policyVersion: 1,
        permissionSets: p.sets,
        ...(p.agentScopes ? { agent: { clientId: 'bot', name: 'Bot', scopes: p.agentScopes } } : {}),
      };
    },
  };
}

/**
 * One differential case: loads the random world into PostgreSQL under a fresh org id and compares,
 * for every principal × action × object, the rows the SQL row filter returns with the rows the
 * in-memory check allows (as multisets, so duplicates would show), and a random where in SQL with
 * the in-memory evaluator. Throws with the details on the first difference.
 */
export async function runDifferentialCase(
  client: Client,
  w: RandomWorld,
  org: string,
  stats: DiffStats,
  semiJoin: 'in' | 'exists' = 'in',
): Promise<void> {
  const built = buildWorld(w, org);
  const { catalog, facts, byObject, shares } = built;
  const acctRows = byObject.acct;
  await loadWorld(client, { orgId: org, userRoles: w.userRoles, groupMembers: w.groupMembers, facts, shares, records: byObject });

  const selects: string[] = [];
  const params = new SqlParams();
  const expected = new Map<string, string[]>();
  w.principals.forEach((p, pi) => {
    const snapshot = built.snapshot(pi);
    const decision = compileDecision(snapshot, catalog, { sqlSchema: createSqlSchema({ semiJoin }) });
    for (const object of DIFF_OBJECTS) {
      for (const action of DIFF_ACTIONS) {
        const key = `p${pi}:${object.name}:${action}`;
        const allowed = byObject[object.name].filter((row) => decision.canRecord(action, object.name, row, facts)).map((r) => String(r.id));
        expected.set(key, allowed.sort());
        stats.checks += byObject[object.name].length;
        stats.allowed += allowed.length;
        // One parameter space for the whole UNION ALL: each filter continues the numbering.
        const filter = decision.rowFilter(action, object.name, { alias: 't', paramOffset: params.values.length });
        params.values.push(...filter.params);
        selects.push(`SELECT '${key}'::text AS k, t.id FROM ${quoteIdent(`obj_${object.name}`)} t WHERE ${sqlOfPlan(filter.plan)}`);
      }
    }
    // listFilter: the principal's own where (with their field rights) AND the row filter, sharing
    // one parameter space with everything before it in the UNION.
    let userNode: WhereNode | undefined;
    try {
      userNode = decision.parseWhere('acct', w.where);
    } catch (error) {
      if (isPolicyError(error, 'object_not_found') && !decision.can('read', 'acct')) return;
      if (!isPolicyError(error, 'field_not_readable')) throw error;
      // A refusal must name a field the principal really cannot read.
      if (decision.readableFields('acct').includes(String(error.details.field))) throw error;
      return;
    }
    const node = userNode;
    const key = `p${pi}:acct:list`;
    const list = decision.listFilter('read', 'acct', w.where, { alias: 't', paramOffset: params.values.length });
    params.values.push(...list.params);
    selects.push(`SELECT '${key}'::text AS k, t.id FROM obj_acct t WHERE ${sqlOfPlan(list.plan)}`);
    expected.set(
      key,
      acctRows
        .filter((row) => decision.canRecord('read', 'acct', row, facts) && evaluateWhere(node, row))
        .map((r) => String(r.id))
        .sort(),
    );
    stats.listChecks += acctRows.length;
  });
  const { rows } = await client.query<{ k: string; id: string }>(selects.join('\nUNION ALL\n'), params.values);
  const actual = new Map<string, string[]>([...expected.keys()].map((k) => [k, []]));
  for (const row of rows) actual.get(row.k)!.push(row.id);
  for (const [key, ids] of expected) {
    const got = actual.get(key)!.sort();
    if (JSON.stringify(got) !== JSON.stringify(ids)) {
      throw new Error(`row filter differs for ${key}: sql=${JSON.stringify(got)} memory=${JSON.stringify(ids)}`);
    }
  }

  // The user-where translator: same node, SQL vs memory, over this org's accounts (system rights).
  const types = catalog.get('acct')!.fieldTypes;
  const node = parseWhere(w.where, { typeOf: (f) => types.get(f) });
  const whereParams = new SqlParams(1);
  const text = sqlOfPlan(compileWhereSql(node, { params: whereParams, column: (f) => `t.${quoteIdent(f)}` }));
  const res = await client.query<{ id: string }>(`SELECT t.id FROM obj_acct t WHERE t.id LIKE $1 AND ${text}`, [
    `${org}\\_a%`,
    ...whereParams.values,
  ]);
  const sqlIds = res.rows.map((r) => r.id).sort();
  const memIds = acctRows
    .filter((r) => evaluateWhere(node, r))
    .map((r) => String(r.id))
    .sort();
  if (JSON.stringify(sqlIds) !== JSON.stringify(memIds)) {
    throw new Error(`where differs: sql=${JSON.stringify(sqlIds)} memory=${JSON.stringify(memIds)} sql text=${text}`);
  }
  stats.whereMatches += memIds.length;
  stats.cases++;
}
