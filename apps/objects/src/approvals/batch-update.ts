import { AuditEventRecorded, ErrorCode, type AuditEvent, type PrincipalSnapshot, type RecordOperationResult } from '@custodian/contracts';
import { CustodianException, type OutboxWriter } from '@custodian/platform';
import { PolicyError, quoteIdent, sqlOfPlan, type Decision } from '@custodian/policy';
import type { EntityManager } from 'typeorm';
import { refusalOutcome } from '../decision/as-requester';
import type { StoredObjectDefinition } from '../metadata/object-definition.schema';
import { recordTable } from '../metadata/org-tables';
import { toApiRecord } from '../records/record-query';
import { UUID, type Row } from '../records/record-rows';
import { checkBody, columnValues, readableDiff, type FieldDiff } from '../records/record-write.input';

/** One approved update of a batch: the stored values, the version the reviewers saw, its receipt's key and hash. */
export interface BatchUpdate {
  recordId: string;
  values: unknown;
  expectedVersion: number;
  idempotencyKey: string;
  hash: string;
}

/** What `updateMany` answers per item: a result, or `single` for an item the caller must apply through RecordWriteService.update. */
export type BatchAnswer = RecordOperationResult | 'single';

/** A refusal as its outcome; an error that is not a refusal is rethrown. */
function refused(error: unknown): RecordOperationResult {
  const answer = refusalOutcome(error);
  if (!answer) throw error;
  return answer;
}

/**
 * The updates of one requester on one object, applied in the caller's transaction with a fixed
 * number of statements instead of six per item — each item still decided exactly as
 * RecordWriteService.update decides it, under the same decision (the requester's, rebuilt now: P1):
 *  1. the rows, locked (`FOR UPDATE`, id order), by id AND the requester's read row filter: a row
 *     not returned is `not_found`, as lockForWrite answers;
 *  2. which of them pass the edit row filter: the others are `forbidden` (action_not_allowed);
 *  3. per item: the body's checks (400/403), then the version the reviewers saw (P2: else `stale`);
 *  4. one UPDATE per distinct set of fields, the values from a JSON array turned into the table's
 *     own row type (jsonb_populate_recordset), version + 1, updated_by the requester;
 *  5. one audit event per item (objects.record.updated with its field diff, as update writes it),
 *     all in one INSERT; 6. one receipt per item (P3), all in one INSERT.
 * An item that sets a lookup (its reference needs a per-record check) or names a record an earlier
 * item of the batch already names answers `single`: the caller applies it after these, in the
 * same transaction, through RecordWriteService.update. A failing statement throws (the caller rolls
 * the batch back and applies its items one by one).
 */
export async function updateMany(
  m: EntityManager,
  outbox: OutboxWriter,
  principal: PrincipalSnapshot,
  ctx: { decision: Decision; def: StoredObjectDefinition },
  object: string,
  items: BatchUpdate[],
): Promise<BatchAnswer[]> {
  const { decision, def } = ctx;
  const answers = new Array<BatchAnswer | undefined>(items.length);
  const values = new Array<Row | undefined>(items.length);
  const seen = new Set<string>();
  const lookups = new Set(def.fields.filter((f) => f.type === 'lookup' || f.type === 'master_detail').map((f) => f.name));
  items.forEach((item, i) => {
    if (!UUID.test(item.recordId)) return void (answers[i] = refused(CustodianException.notFound('Record not found')));
    if (seen.has(item.recordId)) return void (answers[i] = 'single');
    seen.add(item.recordId);
    try {
      // The body's checks and column values exactly as the records update makes them (400/403).
      values[i] = columnValues(def, checkBody(decision, def, item.values ?? {}, 'edit'), 'edit');
    } catch (error) {
      answers[i] = refused(error);
      return;
    }
    if (Object.entries(values[i]!).some(([k, v]) => lookups.has(k) && v !== null)) answers[i] = 'single';
  });
  const due = items.map((_, i) => i).filter((i) => answers[i] === undefined);
  if (due.length === 0) return answers as BatchAnswer[];

  const table = recordTable(principal.orgId, object);
  const ids = due.map((i) => items[i].recordId);
  const read = decision.rowFilter('read', object, { alias: 't', paramOffset: 1 });
  const before = new Map(
    (
      (await m.query(`SELECT t.* FROM ${table} t WHERE t.id = ANY($1::uuid[]) AND ${sqlOfPlan(read.plan)} ORDER BY t.id FOR UPDATE OF t`, [
        ids,
        ...read.params,
      ])) as Row[]
    ).map((r) => [String(r.id), r]),
  );
  const edit = decision.rowFilter('edit', object, { alias: 't', paramOffset: 1 });
  const editable =
    before.size === 0
      ? new Set<string>()
      : new Set(
          (
            (await m.query(`SELECT t.id FROM ${table} t WHERE t.id = ANY($1::uuid[]) AND ${sqlOfPlan(edit.plan)}`, [
              [...before.keys()],
              ...edit.params,
            ])) as Row[]
          ).map((r) => String(r.id)),
        );
  const writes = new Map<string, number[]>();
  for (const i of due) {
    const row = before.get(items[i].recordId);
    if (!row) answers[i] = refused(CustodianException.notFound('Record not found'));
    else if (!editable.has(items[i].recordId)) answers[i] = refused(new PolicyError('action_not_allowed', { action: 'edit', object }));
    else if (Number(row.version) !== items[i].expectedVersion)
      answers[i] = refused(
        new CustodianException(ErrorCode.PreconditionFailed, 'The record has changed (version mismatch)', {
          currentVersion: Number(row.version),
        }),
      );
    else {
      const shape = Object.keys(values[i]!).sort().join(',');
      writes.set(shape, [...(writes.get(shape) ?? []), i]);
    }
  }

  const events: AuditEvent[] = [];
  const receipts: Array<{ i: number; version: number; previousVersion: number }> = [];
  for (const group of writes.values()) {
    const keys = Object.keys(values[group[0]]!);
    const sets = keys.map((k) => `${quoteIdent(k)} = x.${quoteIdent(k)}`);
    const [rows] = (await m.query(
      `UPDATE ${table} t SET ${[...sets, 'version = t.version + 1', 'updated_at = now()', 'updated_by = $2'].join(', ')}
         FROM jsonb_populate_recordset(NULL::${table}, $1::jsonb) x
        WHERE t.id = x.id AND t.org_id = $3 RETURNING t.*`,
      [JSON.stringify(group.map((i) => ({ ...values[i], id: items[i].recordId }))), principal.userId, principal.orgId],
    )) as [Row[], number];
    if (rows.length !== group.length) throw new Error(`batch update wrote ${rows.length} of ${group.length} records`);
    const after = new Map(rows.map((r) => [String(r.id), r]));
    for (const i of group) {
      const id = items[i].recordId;
      const next = toApiRecord(def, after.get(id)!, keys);
      const prev = toApiRecord(def, before.get(id)!, keys);
      const changes: FieldDiff = {};
      for (const k of keys)
        if (JSON.stringify(prev[k]) !== JSON.stringify(next[k])) changes[k] = { from: prev[k] ?? null, to: next[k] ?? null };
      const version = Number(after.get(id)!.version);
      events.push(
        outbox.prepare({
          orgId: principal.orgId,
          action: 'objects.record.updated',
          outcome: 'success',
          target: { type: object, id },
          details: { changes, version },
        }),
      );
      answers[i] = { outcome: 'applied', recordId: id, version, diff: readableDiff(decision, object, changes) };
      receipts.push({ i, version, previousVersion: Number(before.get(id)!.version) });
    }
  }
  if (events.length > 0) {
    // In request order (uuidv7 ids ascending), as the items' own transactions would have written them.
    await m.query('INSERT INTO outbox (id, subject, payload) SELECT * FROM unnest($1::uuid[], $2::text[], $3::jsonb[])', [
      events.map((e) => e.id),
      events.map(() => AuditEventRecorded.subject),
      events.map((e) => JSON.stringify(e)),
    ]);
    await m.query(
      `INSERT INTO idempotency_key (org_id, user_id, key, request_hash, status, response)
       SELECT $1::uuid, $2::uuid, x.key, x.hash, 200, x.response FROM unnest($3::text[], $4::text[], $5::jsonb[]) AS x(key, hash, response)`,
      [
        principal.orgId,
        principal.userId,
        receipts.map((r) => items[r.i].idempotencyKey),
        receipts.map((r) => items[r.i].hash),
        receipts.map((r) => JSON.stringify({ id: items[r.i].recordId, version: r.version, previousVersion: r.previousVersion })),
      ],
    );
    outbox.appended();
  }
  return answers as BatchAnswer[];
}
