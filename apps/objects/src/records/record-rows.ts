import { ErrorCode, type PrincipalSnapshot } from '@custodian/contracts';
import { CustodianException } from '@custodian/platform';
import { PolicyError, sqlOfPlan, type Decision } from '@custodian/policy';
import type { EntityManager } from 'typeorm';
import type { GovernedContext, RequestDecisionService } from '../decision/request-decision.service';
import type { StoredObjectDefinition } from '../metadata/object-definition.schema';
import { recordTable } from '../metadata/org-tables';

/**
 * What the query side (record-query.service.ts) and the write side (record-write.service.ts) of
 * records share: the caller's context on an object, record ids and versions, and the one governed
 * statement that reads (or locks) a record by id under the policy row filter.
 */

export type Row = Record<string, unknown>;

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export type RecordContext = GovernedContext & { def: StoredObjectDefinition };

export function notFound(): CustodianException {
  return CustodianException.notFound('Record not found');
}

/** An object the caller's apps or agent scopes hide does not exist for them (R6, R7). */
export function visibleDef(ctx: GovernedContext, object: string): StoredObjectDefinition {
  const def = ctx.catalog.definitions.get(object);
  if (!def || !ctx.decision.objectVisible(object)) throw new PolicyError('object_not_found', { object });
  return def;
}

/** The caller's verified decision and catalog, and the definition of an object visible to them. */
export async function recordContext(
  decisions: RequestDecisionService,
  principal: PrincipalSnapshot,
  object: string,
): Promise<RecordContext> {
  const ctx = await decisions.forPrincipal(principal);
  return { ...ctx, def: visibleDef(ctx, object) };
}

export function recordId(id: string): string {
  if (!UUID.test(id)) throw notFound();
  return id;
}

/**
 * `If-Match: "3"` (or a bare `3`) → 3. If-Match uses strong comparison (RFC 9110 §13.1.1): a weak
 * tag `W/"3"` never matches, so it is a failed precondition rather than a version.
 */
export function parseIfMatch(header: string | undefined, required: boolean): number | undefined {
  if (header === undefined || header === '') {
    if (required) throw new CustodianException(ErrorCode.PreconditionFailed, 'If-Match with the record version is required');
    return undefined;
  }
  const value = header.trim();
  if (value.startsWith('W/'))
    throw new CustodianException(ErrorCode.PreconditionFailed, 'If-Match uses strong comparison: a weak ETag (W/"…") never matches');
  const m = /^"?(\d{1,9})"?$/.exec(value);
  if (!m) throw new CustodianException(ErrorCode.PreconditionFailed, 'If-Match must carry the record version (ETag)');
  return Number(m[1]);
}

/** One statement: the record by id AND the policy row filter for `action`. */
export async function readRow(
  m: EntityManager,
  decision: Decision,
  orgId: string,
  object: string,
  id: string,
  action: 'read' | 'edit' | 'delete' | 'share' | 'transfer',
  lock: boolean,
): Promise<Row | undefined> {
  const filter = decision.rowFilter(action, object, { alias: 't', paramOffset: 1 });
  if (filter.plan.kind === 'never') return undefined;
  const rows: Row[] = await m.query(
    `SELECT t.* FROM ${recordTable(orgId, object)} t WHERE t.id = $1 AND ${sqlOfPlan(filter.plan)}${lock ? ' FOR UPDATE OF t' : ''}`,
    [id, ...filter.params],
  );
  return rows[0];
}

/**
 * Locks the record for a write: invisible (missing, other org, no read access) → 404; visible
 * but below the level the action needs → 403 (the caller may already see it).
 */
export async function lockForWrite(
  m: EntityManager,
  decision: Decision,
  orgId: string,
  object: string,
  id: string,
  action: 'edit' | 'delete' | 'share' | 'transfer',
): Promise<Row> {
  const row = await readRow(m, decision, orgId, object, id, 'read', true);
  if (!row) throw notFound();
  const allowed = await readRow(m, decision, orgId, object, id, action, false);
  if (!allowed) throw new PolicyError('action_not_allowed', { action, object });
  return row;
}
