import type { FieldLevel, ObjectPermission, PermissionSet, PrincipalSnapshot } from '../model/principal-snapshot.schema';
import type { Grantee } from '../model/object-security.schema';
import { ownValue } from '../model/safe-input';
import { SYSTEM_FIELDS } from '../objectql/where.ast';
import type { ObjectAction } from './access-level';
import type { CompiledObject, CompiledSharingRule, PolicyCatalog } from './policy-catalog';

export const VIEW_ALL_DATA_SET = 'capability:view_all_data';
export const MODIFY_ALL_DATA_SET = 'capability:modify_all_data';

export type GrantKey = 'read' | 'create' | 'edit' | 'delete' | 'transfer' | 'viewAll' | 'modifyAll';

export interface FieldGrant {
  readonly level: FieldLevel;
  /** Permission set that gave the effective level (null: no set grants read on the object). */
  readonly source: string | null;
}

export interface MatchingRule {
  readonly rule: CompiledSharingRule;
  readonly level: 1 | 2;
}

/** One object as seen by one principal: who grants what, field levels, rules that apply to them. */
export interface ObjectGrant {
  readonly object: CompiledObject;
  /** The object belongs to an app the user has no access to: it does not exist for them (R6). */
  readonly hiddenByApp: boolean;
  /** The agent's object allowlist excludes the object (R7). */
  readonly hiddenByAgent: boolean;
  /** User-level sources (permission set names) per grant, before agent scopes. */
  readonly sources: Readonly<Record<GrantKey, readonly string[]>>;
  readonly fields: ReadonlyMap<string, FieldGrant>;
  readonly rules: readonly MatchingRule[];
}

/** A permission set contribution, including the synthetic sets of view_all_data / modify_all_data (R6). */
interface EffectiveSet {
  readonly name: string;
  perms(object: string): ObjectPermission | undefined;
  fieldLevels(object: string): Readonly<Record<string, FieldLevel>> | undefined;
}

function effectiveSets(sets: readonly PermissionSet[]): EffectiveSet[] {
  const result: EffectiveSet[] = sets.map((set) => ({
    name: set.name,
    perms: (object) => (set.objects ? (ownValue(set.objects, object) as ObjectPermission | undefined) : undefined),
    fieldLevels: (object) => (set.fields ? (ownValue(set.fields, object) as Record<string, FieldLevel> | undefined) : undefined),
  }));
  const caps = new Set(sets.flatMap((s) => s.systemCapabilities ?? []));
  if (caps.has('modify_all_data')) {
    // Like an object's "Modify All", the capability includes creating (ADR 0005 §6).
    result.push({
      name: MODIFY_ALL_DATA_SET,
      perms: () => ({ modifyAllRecords: true, allowCreate: true }),
      fieldLevels: () => ({ '*': 'edit' }),
    });
  }
  if (caps.has('view_all_data')) {
    result.push({ name: VIEW_ALL_DATA_SET, perms: () => ({ viewAllRecords: true }), fieldLevels: () => ({ '*': 'read' }) });
  }
  return result;
}

const FIELD_RANK: Record<FieldLevel, number> = { none: 0, read: 1, edit: 2 };

/** R5: a set's level for a field — explicit entry, else none for sensitive, else "*", else edit. */
function setFieldLevel(levels: Readonly<Record<string, FieldLevel>> | undefined, field: string, sensitive: boolean): FieldLevel {
  const explicit = levels ? (ownValue(levels, field) as FieldLevel | undefined) : undefined;
  if (explicit) return explicit;
  if (sensitive) return 'none';
  const star = levels ? (ownValue(levels, '*') as FieldLevel | undefined) : undefined;
  return star ?? 'edit';
}

export class PrincipalGrants {
  readonly userId: string;
  readonly orgId: string;
  readonly roleId: string | null;
  /** roleId + its proper ancestors: matches `role_and_subordinates` grantees. */
  readonly roleAndAncestors: readonly string[];
  readonly groupIds: ReadonlySet<string>;
  readonly capabilities: ReadonlySet<string>;
  readonly apps: ReadonlySet<string>;
  /** The capability set that opens every app (R6), if the principal holds one. */
  readonly allAppsBy: string | null;
  readonly objects = new Map<string, ObjectGrant>();
  private readonly sets: EffectiveSet[];
  private readonly roleSet: ReadonlySet<string>;

  constructor(
    readonly snapshot: PrincipalSnapshot,
    readonly catalog: PolicyCatalog,
  ) {
    this.userId = snapshot.userId;
    this.orgId = snapshot.orgId;
    this.roleId = snapshot.roleId;
    this.roleAndAncestors = snapshot.roleId ? [snapshot.roleId, ...snapshot.ancestorRoleIds] : [];
    this.roleSet = new Set(this.roleAndAncestors);
    this.groupIds = new Set(snapshot.groupIds);
    this.capabilities = new Set(
      snapshot.permissionSets.flatMap((s) => [...(s.systemCapabilities ?? []), ...(s.integrationCapabilities ?? [])]),
    );
    this.apps = new Set(snapshot.permissionSets.flatMap((s) => s.apps ?? []));
    // R6: view_all_data / modify_all_data grant every app.
    this.allAppsBy = this.capabilities.has('modify_all_data')
      ? MODIFY_ALL_DATA_SET
      : this.capabilities.has('view_all_data')
        ? VIEW_ALL_DATA_SET
        : null;
    this.sets = effectiveSets(snapshot.permissionSets);
    for (const object of catalog.objects.values()) this.objects.set(object.name, this.compileObject(object));
  }

  /** Does a sharing-rule / share grantee denote this principal? */
  matchesGrantee(grantee: Grantee): boolean {
    return this.matchesGranteeParts(grantee.type, grantee.id);
  }

  matchesGranteeParts(type: string, id: string): boolean {
    switch (type) {
      case 'user':
        return id === this.userId;
      case 'group':
        return this.groupIds.has(id);
      case 'role':
        return id === this.roleId;
      case 'role_and_subordinates':
        return this.roleSet.has(id);
      default:
        return false;
    }
  }

  /** R7: may the agent (if any) perform this action on this object? */
  agentAllows(action: ObjectAction | 'viewAll' | 'modifyAll', object: string): boolean {
    const agent = this.snapshot.agent;
    if (!agent) return true;
    if (agent.objects && !agent.objects.includes(object)) return false;
    const scope = action === 'read' || action === 'viewAll' ? 'data:read' : 'data:write';
    return agent.scopes.includes(scope);
  }

  private compileObject(object: CompiledObject): ObjectGrant {
    const sources: Record<GrantKey, string[]> = { read: [], create: [], edit: [], delete: [], transfer: [], viewAll: [], modifyAll: [] };
    const readSets: EffectiveSet[] = [];
    for (const set of this.sets) {
      const p = set.perms(object.name);
      if (!p) continue;
      const all = p.modifyAllRecords === true;
      const view = all || p.viewAllRecords === true;
      if (p.allowRead || view) {
        sources.read.push(set.name);
        readSets.push(set);
      }
      if (p.allowCreate) sources.create.push(set.name);
      if (p.allowEdit || all) sources.edit.push(set.name);
      if (p.allowDelete || all) sources.delete.push(set.name);
      if (p.allowTransfer || all) sources.transfer.push(set.name);
      if (view) sources.viewAll.push(set.name);
      if (all) sources.modifyAll.push(set.name);
    }
    const fields = new Map<string, FieldGrant>();
    for (const field of object.fields.values()) {
      let best: FieldGrant = { level: 'none', source: null };
      for (const set of readSets) {
        const level = setFieldLevel(set.fieldLevels(object.name), field.name, field.sensitive === true);
        if (FIELD_RANK[level] > FIELD_RANK[best.level]) best = { level, source: set.name };
      }
      fields.set(field.name, best);
    }
    const rules: MatchingRule[] = [];
    for (const rule of object.sharingRules) {
      if (this.matchesGrantee(rule.sharedWith)) rules.push({ rule, level: rule.accessLevel === 'edit' ? 2 : 1 });
    }
    const agent = this.snapshot.agent;
    return {
      object,
      hiddenByApp: object.app !== undefined && !this.apps.has(object.app) && this.allAppsBy === null,
      hiddenByAgent: agent?.objects !== undefined && !agent.objects.includes(object.name),
      sources,
      fields,
      rules,
    };
  }
}

export const SYSTEM_FIELD_NAMES: readonly string[] = Object.keys(SYSTEM_FIELDS);
