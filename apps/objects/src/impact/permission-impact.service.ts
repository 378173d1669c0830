import { Inject, Injectable } from '@nestjs/common';
import type { DescribedPermissionChange, ObjectImpact, PermissionImpact } from '@custodian/contracts';
import { SERVICE_DATA_SOURCE } from '@custodian/platform';
import {
  compileDecision,
  createSqlSchema,
  type Decision,
  type PolicyCatalog,
  type PolicySqlSchema,
  type PrincipalSnapshot,
  sqlOfPlan,
  type RecordAction,
  type SqlFilter,
} from '@custodian/policy';
import type { DataSource, QueryRunner } from 'typeorm';
import type { OrgCatalog } from '../metadata/object-catalog.service';
import { OBJECTS_SCHEMA, recordTableName } from '../metadata/org-tables';
import { RECORD_WHERE_LIMITS } from '../records/record-query';

/** Name of the role closure as it would be after a role move, written as a CTE over the replica's. */
export const CLOSURE_AFTER = 'role_closure_after';

export interface ImpactLimits {
  /** Users detailed at most. */
  users: number;
  /** Objects detailed per user at most. */
  objects: number;
  /** Wall-clock budget for the counts; users not reached by then are left out (`truncated`). */
  budgetMs: number;
  /** Per-statement timeout inside the read-only transaction. */
  statementTimeoutMs: number;
}

export interface ImpactInput {
  orgId: string;
  described: DescribedPermissionChange;
  before: OrgCatalog;
  /** The catalog as it would be after the change (a sharing rule); the same one otherwise. */
  after: PolicyCatalog;
  /** A role move: the closure after the move as SQL over the replica's role_closure ($1 = org id, then params). */
  closureAfter?: { sql: string; params: unknown[] };
  change: Record<string, unknown>;
  target: Record<string, unknown>;
  limits: ImpactLimits;
}

type Level = 'none' | 'read' | 'edit';
const RANK: Record<Level, number> = { none: 0, read: 1, edit: 2 };
const ACTIONS = ['read', 'edit', 'delete'] as const;

const key = (f: SqlFilter): string => `${sqlOfPlan(f.plan)}\u0000${JSON.stringify(f.params)}`;

/**
 * The blast radius of a permission change: for each affected user and object, what they may do on
 * the type, which field levels move, and how many records they can read and edit — counted with
 * the same row filters the records API uses, before and after, in ONE read-only repeatable-read
 * transaction so both sides see the same rows. Capped in users, objects per user and time.
 */
@Injectable()
export class PermissionImpactService {
  constructor(@Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource) {}

  async compute(input: ImpactInput): Promise<PermissionImpact> {
    const { described, limits } = input;
    // Both sides use unqualified directory tables (search_path is the objects schema) so that the
    // only textual difference a role move makes is the closure table, which a CTE supplies.
    const beforeSchema = schemaFor(input.orgId, 'role_closure');
    const afterSchema = input.closureAfter ? schemaFor(input.orgId, CLOSURE_AFTER) : beforeSchema;
    const objects = [...input.before.definitions.keys()].sort();
    const deadline = Date.now() + limits.budgetMs;
    const users: PermissionImpact['users'] = [];
    let detailed = 0;
    let gains = 0;
    let losses = 0;
    let truncated = described.usersInScope > described.users.length;
    const runner = this.ds.createQueryRunner();
    await runner.connect();
    try {
      await runner.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await runner.query(`SET LOCAL statement_timeout = ${Math.max(1, Math.floor(limits.statementTimeoutMs))}`);
      for (const user of described.users.slice(0, limits.users)) {
        if (Date.now() > deadline) {
          truncated = true;
          break;
        }
        const snapshotOf = (side: 'before' | 'after'): PrincipalSnapshot => ({
          userId: user.userId,
          orgId: input.orgId,
          roleId: user[side].roleId,
          ancestorRoleIds: user[side].ancestorRoleIds,
          groupIds: user[side].groupIds,
          policyVersion: described.policyVersion,
          permissionSets: user[side].sets.map((i) => described.sets[i]),
        });
        const opts = { whereLimits: RECORD_WHERE_LIMITS };
        const before = compileDecision(snapshotOf('before'), input.before.policy, { ...opts, sqlSchema: beforeSchema });
        const after = compileDecision(snapshotOf('after'), input.after, { ...opts, sqlSchema: afterSchema });
        const changed: Record<string, ObjectImpact> = {};
        let count = 0;
        let objectsTruncated = false;
        for (const object of objects) {
          const fieldNames = (input.before.definitions.get(object)?.fields ?? []).map((f) => f.name);
          const impact = await this.objectImpact(runner, input, object, fieldNames, before, after);
          if (!impact) continue;
          const tally = score(impact);
          gains += tally.gains;
          losses += tally.losses;
          if (count >= limits.objects) {
            objectsTruncated = true;
            truncated = true;
            continue;
          }
          changed[object] = impact;
          count++;
        }
        detailed++;
        if (count > 0 || objectsTruncated)
          users.push({ userId: user.userId, email: user.email, objects: changed, ...(objectsTruncated ? { objectsTruncated } : {}) });
      }
      if (detailed < described.users.length) truncated = true;
    } finally {
      await runner.query('ROLLBACK').catch(() => undefined);
      await runner.release();
    }
    return {
      change: input.change,
      target: input.target,
      users,
      totals: { usersInScope: described.usersInScope, usersDetailed: detailed, usersAffected: users.length, gains, losses },
      truncated,
      limits: { users: limits.users, objects: limits.objects },
    };
  }

  /** One user's access to one object before and after, or undefined when nothing differs. */
  private async objectImpact(
    runner: QueryRunner,
    input: ImpactInput,
    object: string,
    fieldNames: string[],
    before: Decision,
    after: Decision,
  ): Promise<ObjectImpact | undefined> {
    const access = Object.fromEntries(ACTIONS.map((a) => [a, { before: before.can(a, object), after: after.can(a, object) }])) as Pick<
      ObjectImpact,
      'read' | 'edit' | 'delete'
    >;
    const fields: ObjectImpact['fields'] = {};
    for (const f of fieldNames) {
      const b = before.fieldLevel(object, f);
      const a = after.fieldLevel(object, f);
      if (a !== b) fields[f] = { before: b, after: a };
    }
    const filters = (['read', 'edit'] as RecordAction[]).map((action) => [
      before.rowFilter(action, object),
      after.rowFilter(action, object),
    ]);
    const sameAccess = ACTIONS.every((a) => access[a].before === access[a].after);
    const sameFilters = filters.every(([b, a]) => key(b) === key(a));
    if (sameAccess && sameFilters && Object.keys(fields).length === 0) return undefined;
    const [readable, editable] = await this.count(runner, input, object, [
      [before, 'read'],
      [after, 'read'],
      [before, 'edit'],
      [after, 'edit'],
    ]).then((c) => [
      { before: c[0], after: c[1] },
      { before: c[2], after: c[3] },
    ]);
    // Filters can differ in text yet select the same rows (a moved role's members carry new ancestors).
    if (sameAccess && Object.keys(fields).length === 0 && readable.before === readable.after && editable.before === editable.after)
      return undefined;
    return { ...access, records: { readable, editable }, fields };
  }

  /** Counts rows under each (decision, action) row filter in one scan; identical filters are counted once. */
  private async count(runner: QueryRunner, input: ImpactInput, object: string, wanted: Array<[Decision, RecordAction]>): Promise<number[]> {
    const cte = input.closureAfter;
    const params: unknown[] = cte ? [input.orgId, ...cte.params] : [];
    const columns: string[] = [];
    const slots = new Map<string, number>();
    const slotOf: number[] = [];
    for (const [decision, action] of wanted) {
      const probe = decision.rowFilter(action, object);
      if (probe.plan.kind === 'never') {
        slotOf.push(-1);
        continue;
      }
      const k = key(probe);
      let slot = slots.get(k);
      if (slot === undefined) {
        const f = decision.rowFilter(action, object, { alias: 't', paramOffset: params.length });
        params.push(...f.params);
        slot = columns.push(`count(*) FILTER (WHERE ${sqlOfPlan(f.plan)})::bigint AS c${columns.length}`) - 1;
        slots.set(k, slot);
      }
      slotOf.push(slot);
    }
    if (columns.length === 0) return wanted.map(() => 0);
    const table = `"${OBJECTS_SCHEMA}"."${recordTableName(input.orgId, object)}"`;
    const withClause = cte ? `WITH ${CLOSURE_AFTER} AS (${cte.sql}) ` : '';
    const rows = (await runner.query(`${withClause}SELECT ${columns.join(', ')} FROM ${table} t`, params)) as Array<Record<string, string>>;
    return slotOf.map((slot) => (slot < 0 ? 0 : Number(rows[0][`c${slot}`])));
  }
}

function schemaFor(orgId: string, roleClosureTable: string): PolicySqlSchema {
  return createSqlSchema({ recordsSchema: OBJECTS_SCHEMA, recordTableName: (object) => recordTableName(orgId, object), roleClosureTable });
}

/** Widened and narrowed access of one object impact: type-level actions, field levels, record counts. */
export function score(impact: ObjectImpact): { gains: number; losses: number } {
  let gains = 0;
  let losses = 0;
  const step = (delta: number): void => {
    if (delta > 0) gains++;
    else if (delta < 0) losses++;
  };
  for (const a of ACTIONS) step(Number(impact[a].after) - Number(impact[a].before));
  for (const f of Object.values(impact.fields)) step(RANK[f.after] - RANK[f.before]);
  step(impact.records.readable.after - impact.records.readable.before);
  step(impact.records.editable.after - impact.records.editable.before);
  return { gains, losses };
}
