import { createHash } from 'node:crypto';
import { Inject, Injectable, Optional } from '@nestjs/common';
import { ErrorCode, GetPrincipalSnapshot, type PrincipalSnapshot } from '@custodian/contracts';
import {
  BUS,
  CustodianException,
  OutboxWriter,
  PgCode,
  SERVICE_DATA_SOURCE,
  isRetryableTransactionError,
  isUniqueViolation,
  canonicalJson,
  retryWithBackoff,
  uuidv7,
  type Bus,
} from '@custodian/platform';
import { PolicyError, quoteIdent, type Decision } from '@custodian/policy';
import type { DataSource, EntityManager } from 'typeorm';
import { RequestDecisionService } from '../decision/request-decision.service';
import { FILE_STORAGE, type FileStorage } from '../files/file-storage';
import type { StoredObjectDefinition } from '../metadata/object-definition.schema';
import { recordTable } from '../metadata/org-tables';
import { bad, toApiRecord } from './record-query';
import { UUID, lockForWrite, parseIfMatch, readRow, recordContext, recordId, type Row } from './record-rows';
import { checkBody, columnValues, fileKeysOf, readableDiff, type FieldDiff } from './record-write.input';

/** Serialization failures and deadlocks are retried this many times (F6). */
const MAX_TX_ATTEMPTS = 4;

export interface WriteResult {
  status: number;
  record: Record<string, unknown>;
  replayed?: boolean;
  /** Changed fields the caller can read (R5). */
  diff?: FieldDiff;
  /** Version before the write (for dry-runs). */
  previousVersion?: number | null;
}

export interface WriteOptions {
  /** Run every check and the write itself, then roll back (approvals' dry-run). */
  dryRun?: boolean;
  /** Runs inside the write's own transaction just before it commits (never on a dry-run): a receipt that commits with the write. */
  beforeCommit?: (m: EntityManager, result: WriteResult) => Promise<void>;
  /**
   * Runs inside this transaction (a batch's: approvals' bulk apply of updates) instead of its own:
   * the caller commits, and rolls the whole batch back if a statement fails. Never with a dry-run.
   */
  manager?: EntityManager;
}

/** Thrown at the end of a dry-run transaction to roll it back with its result. */
class DryRunRollback extends Error {
  constructor(readonly result: WriteResult) {
    super('dry run');
  }
}

/**
 * The write side of records (step 3 of issue #5): create (with Idempotency-Key), update, delete,
 * dry-runs and batch transactions. Every statement carries the policy row filter; answers carry
 * readable fields only; every write commits its audit event (field diff) in its own transaction.
 * Reads: record-query.service.ts.
 */
@Injectable()
export class RecordWriteService {
  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(RequestDecisionService) private readonly decisions: RequestDecisionService,
    @Inject(BUS) private readonly bus: Bus,
    @Optional() @Inject(FILE_STORAGE) private readonly files?: FileStorage,
  ) {}

  /**
   * `owner_id` in a create body: create on behalf of another member in one call. Allowed when the
   * caller may transfer records of this object (what creating and then transferring would need);
   * the owner must be an active member of the org. Without it, the caller owns the record.
   */
  private async ownerFor(
    principal: PrincipalSnapshot,
    decision: Decision,
    object: string,
    body: unknown,
  ): Promise<{ ownerId: string; rest: unknown }> {
    if (typeof body !== 'object' || body === null || Array.isArray(body) || !Object.hasOwn(body, 'owner_id')) {
      return { ownerId: principal.userId, rest: body };
    }
    const { owner_id: ownerId, ...rest } = body as Row;
    if (typeof ownerId !== 'string' || !UUID.test(ownerId)) throw bad('owner_id is the id of a member', '/owner_id');
    if (ownerId === principal.userId) return { ownerId, rest };
    if (!decision.can('transfer', object)) throw new PolicyError('action_not_allowed', { object, action: 'transfer' });
    await this.bus.request(GetPrincipalSnapshot, { userId: ownerId, orgId: principal.orgId }).catch(() => {
      throw bad('The owner is not a member of this organization', '/owner_id');
    });
    return { ownerId, rest };
  }

  /** POST with optional Idempotency-Key (F1): the same key and body answer the first result again. */
  async create(
    principal: PrincipalSnapshot,
    object: string,
    body: unknown,
    idempotencyKey?: string,
    opts: WriteOptions = {},
  ): Promise<WriteResult> {
    const { decision, def } = await recordContext(this.decisions, principal, object);
    const { ownerId, rest } = await this.ownerFor(principal, decision, object, body);
    const input = checkBody(decision, def, rest, 'create');
    const values = columnValues(def, input, 'create');
    // Canonical JSON: a retry that serialises the same body with its keys in another order is the same request.
    const requestHash = createHash('sha256')
      .update(`POST ${object}\n${canonicalJson(body)}`)
      .digest('hex');
    return this.withRetry(async () => {
      try {
        return await this.ds.transaction(async (m) => {
          if (idempotencyKey) {
            const prior: Array<{ request_hash: string; status: number; response: Row }> = await m.query(
              'SELECT request_hash, status, response FROM idempotency_key WHERE org_id = $1 AND user_id = $2 AND key = $3',
              [principal.orgId, principal.userId, idempotencyKey],
            );
            if (prior[0]) {
              if (prior[0].request_hash !== requestHash)
                throw new CustodianException(ErrorCode.Conflict, 'This Idempotency-Key was used with another request');
              return { status: prior[0].status, record: decision.projectReadable(object, prior[0].response), replayed: true };
            }
          }
          await this.checkReferences(m, decision, principal.orgId, def, values);
          const id = uuidv7();
          const cols = ['id', 'org_id', 'owner_id', 'created_by', 'updated_by', ...Object.keys(values)];
          const params = [id, principal.orgId, ownerId, principal.userId, principal.userId, ...Object.values(values)];
          const rows: Row[] = await m.query(
            `INSERT INTO ${recordTable(principal.orgId, object)} (${cols.map(quoteIdent).join(', ')}) VALUES (${params.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING *`,
            params,
          );
          const full = toApiRecord(def, rows[0], Object.keys(rows[0]));
          const fields = Object.fromEntries(
            def.fields.filter((f) => f.name in full).map((f) => [f.name, { from: null, to: full[f.name] }]),
          );
          await this.outbox.append(m, {
            orgId: principal.orgId,
            action: 'objects.record.created',
            outcome: 'success',
            target: { type: object, id },
            details: { fields, ...(ownerId !== principal.userId ? { onBehalfOf: ownerId } : {}) },
          });
          const result: WriteResult = {
            status: 201,
            record: decision.projectReadable(object, full),
            diff: readableDiff(decision, object, fields),
            previousVersion: null,
          };
          if (opts.dryRun) throw new DryRunRollback(result);
          if (idempotencyKey) {
            await m.query(
              'INSERT INTO idempotency_key (org_id, user_id, key, request_hash, status, response) VALUES ($1, $2, $3, $4, 201, $5::jsonb)',
              [principal.orgId, principal.userId, idempotencyKey, requestHash, JSON.stringify(full)],
            );
          }
          return result;
        });
      } catch (error) {
        if (error instanceof DryRunRollback) return error.result;
        // A concurrent request with the same key committed first: answer with its result.
        if (
          idempotencyKey &&
          (error as { constraint?: string; driverError?: { constraint?: string } }).driverError?.constraint?.startsWith('PK_')
        ) {
          throw Object.assign(new Error('idempotency race'), { code: PgCode.SerializationFailure });
        }
        throw error;
      }
    });
  }

  async update(
    principal: PrincipalSnapshot,
    object: string,
    id: string,
    body: unknown,
    ifMatch: string | undefined,
    opts: WriteOptions = {},
  ): Promise<WriteResult> {
    const { decision, def } = await recordContext(this.decisions, principal, object);
    recordId(id);
    // A dry-run may omit the version: it answers the current one.
    const expected = parseIfMatch(ifMatch, !opts.dryRun);
    const input = checkBody(decision, def, body, 'edit');
    const values = columnValues(def, input, 'edit');
    return this.withRetry(() =>
      this.rollbackIf(opts, async (m) => {
        const before = await lockForWrite(m, decision, principal.orgId, object, id, 'edit');
        if (expected !== undefined && Number(before.version) !== expected)
          throw new CustodianException(ErrorCode.PreconditionFailed, 'The record has changed (version mismatch)', {
            currentVersion: Number(before.version),
          });
        await this.checkReferences(m, decision, principal.orgId, def, values);
        const keys = Object.keys(values);
        const params: unknown[] = [id, principal.orgId, principal.userId, ...Object.values(values)];
        const sets = keys.map((k, i) => `${quoteIdent(k)} = $${i + 4}`);
        // TypeORM answers an UPDATE … RETURNING with [rows, affected].
        const [rows] = (await m.query(
          `UPDATE ${recordTable(principal.orgId, object)} SET ${[...sets, 'version = version + 1', 'updated_at = now()', 'updated_by = $3'].join(', ')}
            WHERE id = $1 AND org_id = $2 RETURNING *`,
          params,
        )) as [Row[], number];
        const after = toApiRecord(def, rows[0], Object.keys(rows[0]));
        const prev = toApiRecord(def, before, Object.keys(before));
        const changes: FieldDiff = {};
        for (const k of keys)
          if (JSON.stringify(prev[k]) !== JSON.stringify(after[k])) changes[k] = { from: prev[k] ?? null, to: after[k] ?? null };
        await this.outbox.append(m, {
          orgId: principal.orgId,
          action: 'objects.record.updated',
          outcome: 'success',
          target: { type: object, id },
          details: { changes, version: Number(after.version) },
        });
        return {
          status: 200,
          record: decision.projectReadable(object, after),
          diff: readableDiff(decision, object, changes),
          previousVersion: Number(before.version),
        };
      }),
    );
  }

  async remove(
    principal: PrincipalSnapshot,
    object: string,
    id: string,
    ifMatch: string | undefined,
    opts: WriteOptions = {},
  ): Promise<WriteResult> {
    const { decision, def } = await recordContext(this.decisions, principal, object);
    recordId(id);
    const expected = parseIfMatch(ifMatch, false);
    let fileKeys: string[] = [];
    const result = await this.withRetry(() =>
      this.rollbackIf(opts, async (m) => {
        const before = await lockForWrite(m, decision, principal.orgId, object, id, 'delete');
        fileKeys = fileKeysOf(principal.orgId, def, before);
        if (expected !== undefined && Number(before.version) !== expected)
          throw new CustodianException(ErrorCode.PreconditionFailed, 'The record has changed (version mismatch)', {
            currentVersion: Number(before.version),
          });
        await this.assertNoDetails(m, principal.orgId, object, id);
        await m.query(`DELETE FROM ${recordTable(principal.orgId, object)} WHERE id = $1 AND org_id = $2`, [id, principal.orgId]);
        await m.query('DELETE FROM record_shares WHERE org_id = $1 AND object_name = $2 AND record_id = $3', [principal.orgId, object, id]);
        const prev = toApiRecord(def, before, Object.keys(before));
        const fields = Object.fromEntries(def.fields.filter((f) => f.name in prev).map((f) => [f.name, { from: prev[f.name], to: null }]));
        await this.outbox.append(m, {
          orgId: principal.orgId,
          action: 'objects.record.deleted',
          outcome: 'success',
          target: { type: object, id },
          details: { fields },
        });
        return { status: 204, record: { id }, diff: readableDiff(decision, object, fields), previousVersion: Number(before.version) };
      }),
    );
    // Uploaded content goes with its record, once the delete committed (a failure leaves an orphan, never a record without its file).
    if (!opts.dryRun) for (const key of fileKeys) await this.files?.delete(key).catch(() => undefined);
    return result;
  }

  /** A transaction that is rolled back at its end on a dry-run (every check and statement still ran). */
  private async rollbackIf(opts: WriteOptions, fn: (m: EntityManager) => Promise<WriteResult>): Promise<WriteResult> {
    if (opts.manager && !opts.dryRun) {
      const result = await fn(opts.manager);
      await opts.beforeCommit?.(opts.manager, result);
      return result;
    }
    try {
      return await this.ds.transaction(async (m) => {
        const result = await fn(m);
        if (opts.dryRun) throw new DryRunRollback(result);
        await opts.beforeCommit?.(m, result);
        return result;
      });
    } catch (error) {
      if (error instanceof DryRunRollback) return error.result;
      throw error;
    }
  }

  /** A lookup must name a record the caller can read (edit for a master record), in this org. */
  private async checkReferences(
    m: EntityManager,
    decision: Decision,
    orgId: string,
    def: StoredObjectDefinition,
    values: Row,
  ): Promise<void> {
    for (const f of def.fields) {
      if ((f.type !== 'lookup' && f.type !== 'master_detail') || values[f.name] === undefined || values[f.name] === null) continue;
      const ok = await readRow(
        m,
        decision,
        orgId,
        f.reference!,
        values[f.name] as string,
        f.type === 'master_detail' ? 'edit' : 'read',
        false,
      );
      if (!ok) throw bad('The referenced record does not exist or is not accessible', `/${f.name}`);
    }
  }

  /** Master records with details cannot be deleted (no unaudited cascades). */
  private async assertNoDetails(m: EntityManager, orgId: string, object: string, id: string): Promise<void> {
    const defs: Array<{ definition: StoredObjectDefinition }> = await m.query(
      'SELECT definition FROM object_definition WHERE org_id = $1',
      [orgId],
    );
    for (const { definition } of defs) {
      for (const f of definition.fields) {
        if (f.type !== 'master_detail' || f.reference !== object) continue;
        const rows: Row[] = await m.query(`SELECT 1 FROM ${recordTable(orgId, definition.name)} WHERE ${quoteIdent(f.name)} = $1 LIMIT 1`, [
          id,
        ]);
        if (rows.length > 0)
          throw new CustodianException(ErrorCode.Conflict, `The record has ${definition.name} details; delete them first`);
      }
    }
  }

  private async withRetry<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await retryWithBackoff(fn, { attempts: MAX_TX_ATTEMPTS, isRetryable: isRetryableTransactionError });
    } catch (error) {
      if (isUniqueViolation(error)) throw new CustodianException(ErrorCode.Conflict, 'A unique field already has this value');
      throw error;
    }
  }
}
