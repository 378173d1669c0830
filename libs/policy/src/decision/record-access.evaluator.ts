import { evaluateWhere, type RecordRow } from '../objectql/where.evaluator';
import { ownValue } from '../model/safe-input';
import type { LevelRank } from './access-level';
import type { ObjectGrant, PrincipalGrants } from './principal-grants';
import type { RecordAccessFacts } from './record-access.facts';

/** The layers of R9, in the order they are consulted. */
export type ExplainLayer =
  | 'tenant'
  | 'app'
  | 'agent_scope'
  | 'capability'
  | 'object_permission'
  | 'field_security'
  | 'view_all'
  | 'modify_all'
  | 'parent'
  | 'ownership'
  | 'sharing_model'
  | 'role_hierarchy'
  | 'sharing_rule'
  | 'explicit_share'
  | 'record_access';

/** One thing that gave the principal some access level on a record. */
export interface AccessContribution {
  readonly layer: ExplainLayer;
  readonly level: LevelRank;
  /** Permission set, rule name, share grantee or parent record that contributed. */
  readonly source: string;
}

const MAX_DEPTH = 8;

function str(value: unknown): string | null {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : null;
}

/**
 * R4 in memory. Returns the principal's access level on a row of `object` (tenant wall included).
 * Without a trace it may stop early: the result is then exact only in the sense that it is ≥ stopAt
 * exactly when the true level is. With a trace it computes the exact level and records every
 * contribution (for explain). Mirrors row-filter.compiler.ts clause by clause.
 */
export function recordLevel(
  grants: PrincipalGrants,
  objectName: string,
  row: RecordRow,
  facts: RecordAccessFacts,
  stopAt: LevelRank = 3,
  trace?: AccessContribution[],
  depth = 0,
): LevelRank {
  const grant = grants.objects.get(objectName);
  return grant ? recordLevelOf(grants, grant, row, facts, stopAt, trace, depth) : 0;
}

/** recordLevel with the object's grant already looked up (the hot path of Decision.canRecord). */
export function recordLevelOf(
  grants: PrincipalGrants,
  grant: ObjectGrant,
  row: RecordRow,
  facts: RecordAccessFacts,
  stopAt: LevelRank = 3,
  trace?: AccessContribution[],
  depth = 0,
): LevelRank {
  if (depth > MAX_DEPTH) return 0;
  if (ownValue(row, 'org_id') !== grants.orgId) return 0; // R1: nothing outside the org, ever.
  // Hot path: no closures or allocations unless a trace is asked for (explain).
  let level: LevelRank = 0;
  const sources = grant.sources;
  if (sources.modifyAll.length > 0) {
    if (trace) trace.push({ layer: 'modify_all', level: 3, source: sources.modifyAll[0] });
    else return 3;
    level = 3;
  }
  if (sources.viewAll.length > 0) {
    if (trace) trace.push({ layer: 'view_all', level: 1, source: sources.viewAll[0] });
    if (level < 1) level = 1;
    if (!trace && level >= stopAt) return level;
  }

  const object = grant.object;
  if (object.parent) {
    // controlled_by_parent: the master's level is the whole of R4 a–e for the detail record.
    const parentId = str(ownValue(row, object.parent.field));
    const parentRow = parentId === null ? undefined : facts.record(object.parent.object, parentId);
    const parentLevel = parentRow ? recordLevel(grants, object.parent.object, parentRow, facts, stopAt, undefined, depth + 1) : 0;
    if (trace) trace.push({ layer: 'parent', level: parentLevel, source: `${object.parent.object}:${parentId ?? 'null'}` });
    return parentLevel > level ? parentLevel : level;
  }

  const owner = str(ownValue(row, 'owner_id'));
  if (owner !== null && owner === grants.userId) {
    if (!trace) return 3;
    trace.push({ layer: 'ownership', level: 3, source: 'owner' });
    level = 3;
  }
  const owd: LevelRank = object.sharingModel === 'public_read_write' ? 2 : object.sharingModel === 'public_read' ? 1 : 0;
  if (owd > 0) {
    if (trace) trace.push({ layer: 'sharing_model', level: owd, source: object.sharingModel });
    if (owd > level) level = owd;
    if (!trace && level >= stopAt) return level;
  }

  const ownerRole = owner === null ? null : facts.roleOf(owner);
  if (object.grantAccessUsingHierarchy && grants.roleId !== null && ownerRole !== null && facts.ancestorsOf(ownerRole).has(grants.roleId)) {
    if (!trace) return 3;
    trace.push({ layer: 'role_hierarchy', level: 3, source: grants.roleId });
    level = 3;
  }

  const rules = grant.rules;
  for (let i = 0; i < rules.length; i++) {
    const { rule, level: rank } = rules[i];
    if (!trace && rank <= level) continue;
    let applies: boolean;
    if (rule.type === 'criteria') {
      applies = rule.criteriaNode !== undefined && evaluateWhere(rule.criteriaNode, row);
    } else if (owner === null) {
      applies = false;
    } else if (rule.ownedBy.type === 'group') {
      applies = facts.groupsOf(owner).has(rule.ownedBy.id);
    } else if (rule.ownedBy.type === 'role') {
      applies = ownerRole === rule.ownedBy.id;
    } else {
      applies = ownerRole !== null && (ownerRole === rule.ownedBy.id || facts.ancestorsOf(ownerRole).has(rule.ownedBy.id));
    }
    if (!applies) continue;
    if (trace) trace.push({ layer: 'sharing_rule', level: rank, source: rule.name });
    if (rank > level) level = rank;
    if (!trace && level >= stopAt) return level;
  }

  if (!trace && (level >= 2 || stopAt > 2)) return level; // shares give at most edit
  const id = str(ownValue(row, 'id'));
  if (id !== null) {
    const shares = facts.sharesOf(object.name, id);
    for (let i = 0; i < shares.length; i++) {
      const share = shares[i];
      const rank: LevelRank = share.accessLevel === 'edit' ? 2 : 1;
      if (!trace && rank <= level) continue;
      if (!grants.matchesGranteeParts(share.granteeType, share.granteeId)) continue;
      if (trace) trace.push({ layer: 'explicit_share', level: rank, source: `${share.granteeType}:${share.granteeId}` });
      if (rank > level) level = rank;
      if (!trace && level >= stopAt) return level;
    }
  }
  return level;
}
