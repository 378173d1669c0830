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
  /** For a detail record controlled by its master: the master record (`object:id`) this was found on. */
  readonly record?: string;
}

/** How many master records above a detail record are followed; deeper chains give no access. */
export const MAX_PARENT_DEPTH = 8;

function str(value: unknown): string | null {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : null;
}

function note(trace: AccessContribution[], layer: ExplainLayer, level: LevelRank, source: string, on: string | undefined): void {
  trace.push(on === undefined ? { layer, level, source } : { layer, level, source, record: on });
}

/**
 * R4 in memory: the principal's access level on a row of `object` (tenant wall included). It stops
 * as soon as the level reaches `stopAt`, so the result is ≥ stopAt exactly when the true level is,
 * and below stopAt it may be lower than the true level (see exactLevel). Mirrors
 * row-filter.compiler.ts clause by clause.
 *
 * `trace` only records what raised the level, in order, and never changes which clauses run: the
 * decision and explain run this same evaluation, so they cannot disagree. When the result reaches
 * stopAt, the last contribution without `record` is the one that decided.
 */
export function recordLevel(
  grants: PrincipalGrants,
  objectName: string,
  row: RecordRow,
  facts: RecordAccessFacts,
  stopAt: LevelRank = 3,
  trace?: AccessContribution[],
  depth = 0,
  on?: string,
): LevelRank {
  const grant = grants.objects.get(objectName);
  return grant ? recordLevelOf(grants, grant, row, facts, stopAt, trace, depth, on) : 0;
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
  on?: string,
): LevelRank {
  if (depth > MAX_PARENT_DEPTH) return 0;
  if (ownValue(row, 'org_id') !== grants.orgId) return 0; // R1: nothing outside the org, ever.
  // Hot path: no closures or allocations unless a trace is asked for (explain).
  const sources = grant.sources;
  if (sources.modifyAll.length > 0) {
    if (trace) note(trace, 'modify_all', 3, sources.modifyAll[0], on);
    return 3;
  }
  let level: LevelRank = 0;
  if (sources.viewAll.length > 0) {
    if (trace) note(trace, 'view_all', 1, sources.viewAll[0], on);
    level = 1;
    if (level >= stopAt) return level;
  }

  const object = grant.object;
  if (object.parent) {
    // controlled_by_parent: the master's level is the whole of R4 a–e for the detail record.
    const parentId = str(ownValue(row, object.parent.field));
    const parentRow = parentId === null ? undefined : facts.record(object.parent.object, parentId);
    const master = trace ? `${object.parent.object}:${parentId ?? 'null'}` : undefined;
    const parentLevel = parentRow ? recordLevel(grants, object.parent.object, parentRow, facts, stopAt, trace, depth + 1, master) : 0;
    if (trace) note(trace, 'parent', parentLevel, master!, on);
    return parentLevel > level ? parentLevel : level;
  }

  const owner = str(ownValue(row, 'owner_id'));
  if (owner !== null && owner === grants.userId) {
    if (trace) note(trace, 'ownership', 3, 'owner', on);
    return 3;
  }
  const owd: LevelRank = object.sharingModel === 'public_read_write' ? 2 : object.sharingModel === 'public_read' ? 1 : 0;
  if (owd > level) {
    if (trace) note(trace, 'sharing_model', owd, object.sharingModel, on);
    level = owd;
    if (level >= stopAt) return level;
  }

  const ownerRole = owner === null ? null : facts.roleOf(owner);
  if (object.grantAccessUsingHierarchy && grants.roleId !== null && ownerRole !== null && facts.ancestorsOf(ownerRole).has(grants.roleId)) {
    if (trace) note(trace, 'role_hierarchy', 3, grants.roleId, on);
    return 3;
  }

  const rules = grant.rules;
  for (let i = 0; i < rules.length; i++) {
    const { rule, level: rank } = rules[i];
    if (rank <= level) continue;
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
    if (trace) note(trace, 'sharing_rule', rank, rule.name, on);
    level = rank;
    if (level >= stopAt) return level;
  }

  if (level >= 2 || stopAt > 2) return level; // shares give at most edit
  const id = str(ownValue(row, 'id'));
  if (id !== null) {
    const shares = facts.sharesOf(object.name, id);
    for (let i = 0; i < shares.length; i++) {
      const share = shares[i];
      const rank: LevelRank = share.accessLevel === 'edit' ? 2 : 1;
      if (rank <= level) continue;
      if (!grants.matchesGranteeParts(share.granteeType, share.granteeId)) continue;
      if (trace) note(trace, 'explicit_share', rank, `${share.granteeType}:${share.granteeId}`, on);
      level = rank;
      if (level >= stopAt) return level;
    }
  }
  return level;
}

/**
 * The exact access level (for explain and Decision.recordAccess, not for checks): recordLevelOf
 * asked "full?", then, if not, "edit?" — below its stopAt the second answer is exact.
 */
export function exactLevel(grants: PrincipalGrants, grant: ObjectGrant, row: RecordRow, facts: RecordAccessFacts): LevelRank {
  if (recordLevelOf(grants, grant, row, facts, 3) >= 3) return 3;
  const level = recordLevelOf(grants, grant, row, facts, 2);
  return level >= 2 ? 2 : level;
}
