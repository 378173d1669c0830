import { createMongoAbility, type MongoAbility } from '@casl/ability';
import { PolicyError } from '../errors/policy.error';
import type { Capability, FieldLevel } from '../model/principal-snapshot.schema';
import { assertNoForbiddenKeys, ownValue } from '../model/safe-input';
import { DEFAULT_WHERE_LIMITS, isSystemField, type WhereLimits, type WhereNode } from '../objectql/where.ast';
import type { RecordRow } from '../objectql/where.evaluator';
import { parseWhere } from '../objectql/where.parser';
import { columnRef, compileWhereSql } from '../objectql/where.sql-compiler';
import { SqlParams, type SqlFragment } from '../sql/sql-params';
import { NEVER_FILTER, conditional, sqlOfPlan, type SqlFilter } from '../sql/sql-plan';
import { DEFAULT_SQL_SCHEMA, type PolicySqlSchema } from '../sql/sql-schema.config';
import {
  LEVEL,
  OBJECT_ACTIONS,
  levelName,
  requiredLevel,
  type AccessLevel,
  type LevelRank,
  type ObjectAction,
  type RecordAction,
} from './access-level';
import { ExplainTrace, type Explanation, type ExplainRequest } from './explain';
import { objectActionAllowed } from './object-access';
import { SYSTEM_FIELD_NAMES, type PrincipalGrants } from './principal-grants';
import { exactLevel, recordLevelOf } from './record-access.evaluator';
import { compileRowFilter, everyRowAtLeast } from './row-filter.compiler';
import type { RecordAccessFacts } from './record-access.facts';

const CAPABILITY_SUBJECT = '$capability';
/** Bit of an action in the per-object mask (0 for anything that is not an action). */
function actionBit(action: string): number {
  switch (action) {
    case 'read':
      return 1;
    case 'create':
      return 2;
    case 'edit':
      return 4;
    case 'delete':
      return 8;
    case 'transfer':
      return 16;
    case 'share':
      return 32;
    default:
      return 0;
  }
}

/** R7: which capabilities survive an agent's delegation, and under which scope. */
const AGENT_CAPABILITY_SCOPE: Partial<Record<Capability, string | true>> = {
  view_all_data: 'data:read',
  modify_all_data: 'data:write',
  manage_metadata: 'metadata:write',
  api_access: true,
  agent_access: true,
  mcp_access: true,
};

/**
 * Whether a capability survives an agent's delegation with these scopes (R7): integration
 * capabilities always, `view_all_data` with `data:read`, `modify_all_data` with `data:write`,
 * `manage_metadata` with `metadata:write`, nothing else. Identity narrows a delegated snapshot
 * with it, so every decision point sees the same narrowed capabilities.
 */
export function agentKeepsCapability(capability: string, scopes: readonly string[]): boolean {
  const scope = AGENT_CAPABILITY_SCOPE[capability as Capability];
  return scope === true || (scope !== undefined && scopes.includes(scope));
}

export interface SqlOptions {
  /** Alias of the record table in the caller's query (default `t`). */
  readonly alias?: string;
  /** Number of parameters already in the caller's query; placeholders start after it. */
  readonly paramOffset?: number;
}

interface FieldSets {
  readonly readable: readonly string[];
  readonly editable: readonly string[];
  readonly creatable: readonly string[];
  readonly readableSet: ReadonlySet<string>;
  readonly editableSet: ReadonlySet<string>;
  readonly creatableSet: ReadonlySet<string>;
}

/**
 * Everything one principal may do, compiled once per (principal, policy version). Type-level rules
 * live in a CASL ability; record access (R4) and field security (R5) are evaluated by our own
 * compilers, in memory and as SQL, from the same compiled grants.
 */
export class Decision {
  readonly policyVersion: number;
  private readonly ability: MongoAbility;
  private readonly fieldSets = new Map<string, FieldSets>();
  /** Per object: the actionBit()s CASL allows. Filled from the ability on first use. */
  private readonly actionMasks = new Map<string, number>();

  constructor(
    readonly grants: PrincipalGrants,
    private readonly sqlSchema: PolicySqlSchema = DEFAULT_SQL_SCHEMA,
    private readonly limits: WhereLimits = DEFAULT_WHERE_LIMITS,
    /** Microseconds it took to compile this decision. */
    public buildMicros = 0,
  ) {
    this.policyVersion = grants.snapshot.policyVersion;
    this.ability = createMongoAbility(this.caslRules());
  }

  get userId(): string {
    return this.grants.userId;
  }

  get orgId(): string {
    return this.grants.orgId;
  }

  private caslRules(): { action: string; subject: string }[] {
    const rules: { action: string; subject: string }[] = [];
    for (const [name, grant] of this.grants.objects) {
      for (const action of OBJECT_ACTIONS) {
        if (objectActionAllowed(this.grants, grant, action)) rules.push({ action, subject: name });
      }
    }
    const agent = this.grants.snapshot.agent;
    for (const cap of this.grants.capabilities) {
      if (agent) {
        const scope = AGENT_CAPABILITY_SCOPE[cap as Capability];
        if (scope === undefined || (scope !== true && !agent.scopes.includes(scope as never))) continue;
      }
      rules.push({ action: cap, subject: CAPABILITY_SUBJECT });
    }
    return rules;
  }

  /** Type-level check: may the principal perform `action` on some record of `object`? */
  can(action: ObjectAction, object: string): boolean {
    return (this.actionMask(object) & actionBit(action)) !== 0;
  }

  /** The actionBit()s CASL allows on the object; asked once per object, then memoised. */
  private actionMask(object: string): number {
    let mask = this.actionMasks.get(object);
    if (mask === undefined) {
      mask = 0;
      // Only catalog objects are asked and memoised, so arbitrary names cannot grow the map.
      if (!this.grants.objects.has(object)) return 0;
      for (const action of OBJECT_ACTIONS) if (this.ability.can(action, object)) mask |= actionBit(action);
      this.actionMasks.set(object, mask);
    }
    return mask;
  }

  /** R6 capability check (after agent delegation, R7). */
  hasCapability(capability: Capability): boolean {
    return this.ability.can(capability, CAPABILITY_SUBJECT);
  }

  /** True when the object exists for this principal (known, app accessible, agent allowlisted). */
  objectVisible(object: string): boolean {
    const grant = this.grants.objects.get(object);
    return grant !== undefined && !grant.hiddenByApp && !grant.hiddenByAgent;
  }

  /** The R4 access level on a record (tenant wall included), ignoring object permissions. */
  recordAccess(object: string, row: RecordRow, facts: RecordAccessFacts): AccessLevel {
    const grant = this.grants.objects.get(object);
    return levelName(grant ? exactLevel(this.grants, grant, row, facts) : 0);
  }

  private need(action: RecordAction): LevelRank {
    // Managing shares: full access, or manage_sharing on any record the principal can read.
    if (action === 'share' && this.hasCapability('manage_sharing')) return LEVEL.read;
    return requiredLevel(action);
  }

  /** Record check: object permission (R3) ∧ record access level ≥ what the action needs (R4). */
  canRecord(action: ObjectAction, object: string, row: RecordRow, facts: RecordAccessFacts): boolean {
    return this.evaluate(action, object, row, facts, undefined, undefined);
  }

  /**
   * The one evaluation behind canRecord, can (through the ability built from the same rules) and
   * explain. With a trace it records what it consulted; the trace never changes the verdict.
   */
  private evaluate(
    action: ObjectAction,
    object: string,
    row: RecordRow | undefined,
    facts: RecordAccessFacts | undefined,
    field: string | undefined,
    trace: ExplainTrace | undefined,
  ): boolean {
    const grants = this.grants;
    if (row !== undefined) {
      const org = ownValue(row, 'org_id');
      // A record to be created may leave the org to the service; any other org is outside the wall.
      if (org !== grants.orgId && (action !== 'create' || org !== undefined))
        return trace ? trace.deny('tenant', grants.orgId, 'record is outside the organization') : false;
      trace?.step({ layer: 'tenant', outcome: 'pass', source: grants.orgId });
    }
    const grant = grants.objects.get(object);
    if (trace) {
      if (!grant) return trace.deny('object_permission', object, 'unknown object');
      if (!objectActionAllowed(grants, grant, action, trace)) return false;
    } else if (!this.can(action, object)) {
      return false;
    }
    if (field !== undefined && !this.fieldAllows(action, object, field, trace)) return false;
    if (row === undefined || action === 'create') return true;
    if (!facts) return trace ? trace.deny('record_access', undefined, 'no directory facts supplied') : false;
    const need = this.need(action);
    if (trace && action === 'share' && need === LEVEL.read) trace.step({ layer: 'capability', outcome: 'pass', source: 'manage_sharing' });
    const allowed = recordLevelOf(grants, grant!, row, facts, need, trace?.contributions) >= need;
    trace?.recordAccess(allowed, need, exactLevel(grants, grant!, row, facts));
    return allowed;
  }

  /** Field security of one field for an action (read for read, edit for create/edit), with its trace. */
  private fieldAllows(action: ObjectAction, object: string, field: string, trace: ExplainTrace | undefined): boolean {
    const level = this.fieldLevel(object, field);
    const ok =
      action === 'edit' || action === 'create'
        ? this.editableFields(object, action === 'create' ? 'create' : 'edit').includes(field)
        : level !== 'none';
    if (!trace) return ok;
    const grant = this.grants.objects.get(object);
    const source = grant?.fields.get(field)?.source ?? undefined;
    if (!ok) {
      const why = grant?.object.fields.get(field)?.sensitive ? 'sensitive field not named by any permission set' : `field level ${level}`;
      return trace.deny('field_security', source, why);
    }
    trace.step({
      layer: 'field_security',
      outcome: 'allow',
      ...(source !== undefined ? { source } : {}),
      level: level === 'edit' ? 'edit' : 'read',
    });
    trace.decide('field_security', source);
    return true;
  }

  private fields(object: string): FieldSets {
    let sets = this.fieldSets.get(object);
    if (sets) return sets;
    const grant = this.grants.objects.get(object);
    const readable: string[] = [];
    const editable: string[] = [];
    const creatable: string[] = [];
    if (grant && this.can('read', object)) {
      readable.push(...SYSTEM_FIELD_NAMES);
      const canEdit = this.can('edit', object);
      const canCreate = this.can('create', object);
      for (const [name, field] of grant.fields) {
        if (field.level === 'none') continue;
        readable.push(name);
        if (field.level === 'edit') {
          if (canEdit) editable.push(name);
          if (canCreate) creatable.push(name);
        }
      }
    }
    sets = {
      readable,
      editable,
      creatable,
      readableSet: new Set(readable),
      editableSet: new Set(editable),
      creatableSet: new Set(creatable),
    };
    this.fieldSets.set(object, sets);
    return sets;
  }

  /** Fields the principal can read (system fields included); empty when the object is not readable. */
  readableFields(object: string): readonly string[] {
    return this.fields(object).readable;
  }

  /** Fields the principal can write on `edit` (default) or `create`. System fields never appear. */
  editableFields(object: string, action: 'edit' | 'create' = 'edit'): readonly string[] {
    const sets = this.fields(object);
    return action === 'create' ? sets.creatable : sets.editable;
  }

  /** Effective R5 level of one field (system fields: read when the object is readable). */
  fieldLevel(object: string, field: string): FieldLevel {
    const sets = this.fields(object);
    if (sets.editableSet.has(field) || sets.creatableSet.has(field)) return 'edit';
    return sets.readableSet.has(field) ? 'read' : 'none';
  }

  /** Refuses (403 field_not_readable) sorting/grouping/aggregating/selecting a field the principal cannot read. */
  assertReadable(object: string, fields: Iterable<string>): void {
    const sets = this.fields(object);
    for (const field of fields) {
      if (!sets.readableSet.has(field)) throw new PolicyError('field_not_readable', { object, field });
    }
  }

  /**
   * Write check of R5: every key of `values` must be editable for the action. The whole request is
   * refused on the first offending field, which is named in the error. Unknown fields answer like
   * hidden ones so that writes cannot probe for hidden field names.
   */
  assertWritable(action: 'create' | 'edit', object: string, values: Readonly<Record<string, unknown>>): void {
    assertNoForbiddenKeys(values);
    if (!this.can(action, object)) {
      // Edit needs read, and what cannot be read answers 404 — not a 403 that admits it exists.
      if (action === 'edit' && !this.can('read', object)) throw new PolicyError('object_not_found', { object });
      throw new PolicyError('action_not_allowed', { action, object });
    }
    const sets = this.fields(object);
    const allowed = action === 'create' ? sets.creatableSet : sets.editableSet;
    for (const field of Object.keys(values)) {
      if (isSystemField(field)) throw new PolicyError('system_field_not_writable', { object, field });
      if (!allowed.has(field)) throw new PolicyError('field_not_editable', { object, field });
    }
  }

  /** A copy of `row` with only the readable fields (O2: hidden fields never leave the service). */
  projectReadable(object: string, row: RecordRow): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const field of this.fields(object).readable) {
      if (Object.prototype.hasOwnProperty.call(row, field)) out[field] = row[field];
    }
    return out;
  }

  /**
   * The predicate the objects service ANDs into every query on `object` for `action`: tenant wall +
   * record access, parameterized, as a typed plan — `never` (no parameters) when the object
   * permission is missing, else `conditional` (the tenant wall is always a condition).
   */
  rowFilter(action: RecordAction, object: string, options: SqlOptions = {}): SqlFilter {
    if (!this.can(action, object)) return NEVER_FILTER;
    const params = new SqlParams(options.paramOffset ?? 0);
    const plan = compileRowFilter(this.grants, this.sqlSchema, params, object, options.alias ?? 't', this.need(action));
    return { plan, params: params.values };
  }

  /** True when the principal may read every record of `object` in its org, not only some. */
  readsEveryRecord(object: string): boolean {
    return this.can('read', object) && everyRowAtLeast(this.grants, this.sqlSchema, object, this.need('read'));
  }

  /** Parses a user-supplied ObjectQL `where` with this principal's field rights and R8 limits. */
  parseWhere(object: string, where: unknown): WhereNode {
    if (!this.objectVisible(object) || !this.can('read', object)) throw new PolicyError('object_not_found', { object });
    const sets = this.fields(object);
    const types = this.grants.objects.get(object)!.object.fieldTypes;
    return parseWhere(where, { typeOf: (f) => types.get(f), canRead: (f) => sets.readableSet.has(f) }, this.limits);
  }

  /** Compiles a user `where` to SQL through the same translator as criteria rules. */
  whereSql(object: string, where: unknown, options: SqlOptions = {}): SqlFragment {
    const node = this.parseWhere(object, where);
    const params = new SqlParams(options.paramOffset ?? 0);
    const alias = options.alias ?? 't';
    const plan = compileWhereSql(node, { params, column: (f) => columnRef(alias, this.sqlSchema.fieldColumn(object, f)) });
    return { text: sqlOfPlan(plan), params: params.values };
  }

  /**
   * Row filter AND user where, in one parameter space: what a list query puts after WHERE. `never`
   * when the row filter is; a where that matches everything leaves the row filter alone. (A where
   * that matches nothing is still ANDed as FALSE: the SQL stays what it always was.)
   */
  listFilter(action: RecordAction, object: string, where: unknown, options: SqlOptions = {}): SqlFilter {
    const node = this.parseWhere(object, where);
    if (!this.can(action, object)) return NEVER_FILTER;
    const params = new SqlParams(options.paramOffset ?? 0);
    const alias = options.alias ?? 't';
    const access = compileRowFilter(this.grants, this.sqlSchema, params, object, alias, this.need(action));
    if (access.kind === 'never') return NEVER_FILTER;
    const user = compileWhereSql(node, { params, column: (f) => columnRef(alias, this.sqlSchema.fieldColumn(object, f)) });
    if (user.kind === 'always') return { plan: access, params: params.values };
    return { plan: conditional(`${sqlOfPlan(access)} AND ${sqlOfPlan(user)}`), params: params.values };
  }

  /**
   * R9: which layers were consulted and which one decided — the same evaluation as canRecord (or
   * can, without a record), run with a trace.
   */
  explain(request: ExplainRequest): Explanation {
    const trace = new ExplainTrace();
    const allowed = this.evaluate(request.action, request.object, request.record, request.facts, request.field, trace);
    return trace.explanation(allowed);
  }
}
