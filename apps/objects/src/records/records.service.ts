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
  isUndefinedTableOrColumn,
  isUniqueViolation,
  canonicalJson,
  uuidv7,
  type Bus,
} from '@custodian/platform';
import { PolicyError, isSystemField, quoteIdent, type Decision } from '@custodian/policy';
import type { DataSource, EntityManager } from 'typeorm';
import { RequestDecisionService, type GovernedContext } from '../decision/request-decision.service';
import { DirectoryReplicaService, parseReplicaState } from '../directory/directory-replica.service';
import { FILE_STORAGE, storageKey, type FileStorage } from '../files/file-storage';
import { FieldValueError, toColumnValue } from '../metadata/field-types';
import type { FieldDefinition, StoredObjectDefinition } from '../metadata/object-definition.schema';
import { recordTable } from '../metadata/org-tables';
import { aggregateRows, buildAggregateSql, parseAggregations } from './aggregate-query';
import { ListStatementCache, type BuiltList } from './list-statement-cache';
import { bad, pageOf, selectFields, toApiRecord, type ListResult, type ListSpec } from './record-query';

export const MAX_EXPAND = 5;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAX_WRITE_FIELDS = 200;
/** Serialization failures and deadlocks are retried this many times (F6). */
const MAX_TX_ATTEMPTS = 4;

export interface WriteResult {
  status: number;
  record: Record<string, unknown>;
  replayed?: boolean;
  /** Changed fields the caller can read (R5). */
  diff?: Record<string, { from: unknown; to: unknown }>;
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

function readableDiff(
  decision: Decision,
  object: string,
  diff: Record<string, { from: unknown; to: unknown }>,
): Record<string, { from: unknown; to: unknown }> {
  const readable = new Set(decision.readableFields(object));
  return Object.fromEntries(Object.entries(diff).filter(([k]) => readable.has(k)));
}

type Row = Record<string, unknown>;

function notFound(): CustodianException {
  return CustodianException.notFound('Record not found');
}

/** An object the caller's apps or agent scopes hide does not exist for them (R6, R7). */
function visibleDef(ctx: GovernedContext, object: string): StoredObjectDefinition {
  const def = ctx.catalog.definitions.get(object);
  if (!def || !ctx.decision.objectVisible(object)) throw new PolicyError('object_not_found', { object });
  return def;
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

/**
 * Records of one object (step 3 of issue #5). Every statement carries the policy row filter; reads
 * and writes are answered with readable fields only; every write commits its audit event (field
 * diff) in its own transaction.
 */
@Injectable()
export class RecordsService {
  private readonly statements = new ListStatementCache();

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

  async context(principal: PrincipalSnapshot, object: string): Promise<GovernedContext & { def: StoredObjectDefinition }> {
    const ctx = await this.decisions.forPrincipal(principal);
    return { ...ctx, def: visibleDef(ctx, object) };
  }

  /**
   * A governed list in ONE statement on the hot path: it is built from this process's cached
   * metadata and selects the metadata stamp and replica state alongside the rows (same snapshot).
   * When they prove the decision current (stamp unchanged, replica fresh for the caller's policy
   * version — R10), the page stands; otherwise — or when the page is empty and so proves nothing,
   * or the cached metadata refuses the request — the list starts over on verified metadata
   * (forPrincipal: waits for the replica, re-reads changed metadata).
   */
  async list(principal: PrincipalSnapshot, spec: ListSpec): Promise<ListResult> {
    const unverified = this.decisions.unverified(principal);
    if (unverified) {
      let rows: Row[] | undefined;
      let built: BuiltList | undefined;
      let def: StoredObjectDefinition | undefined;
      try {
        def = this.readableDef(unverified, spec.object);
        built = this.statements.get(unverified.decision, def, principal.orgId, spec, { guard: true });
        rows = await this.ds.query(built.text, built.params);
      } catch (error) {
        // A refusal on possibly stale metadata is re-decided on verified metadata below; so is a
        // table or column the cached metadata names that is gone (another replica changed the object).
        if (!(error instanceof PolicyError || isUndefinedTableOrColumn(error))) throw error;
      }
      const proof = rows?.[0];
      if (
        rows &&
        built &&
        def &&
        proof &&
        proof.__stamp === unverified.catalog.stamp &&
        DirectoryReplicaService.isFresh(parseReplicaState(proof.__replica as string | null), principal.policyVersion)
      ) {
        return this.finishList(principal, def, spec, built, rows);
      }
    }
    const verified = await this.decisions.forPrincipal(principal);
    const def = this.readableDef(verified, spec.object);
    const built = this.statements.get(verified.decision, def, principal.orgId, spec);
    return this.finishList(principal, def, spec, built, await this.ds.query(built.text, built.params));
  }

  private readableDef(ctx: GovernedContext, object: string): StoredObjectDefinition {
    const def = visibleDef(ctx, object);
    if (!ctx.decision.can('read', object)) throw new PolicyError('action_not_allowed', { action: 'read', object });
    return def;
  }

  private async finishList(
    principal: PrincipalSnapshot,
    def: StoredObjectDefinition,
    spec: ListSpec,
    built: BuiltList,
    rows: Row[],
  ): Promise<ListResult> {
    const page = pageOf(def, spec, built, rows);
    if (def.auditReads && page.records.length > 0) {
      await this.ds.transaction((m) =>
        this.outbox.append(m, {
          orgId: principal.orgId,
          action: 'objects.record.read',
          outcome: 'success',
          target: { type: spec.object },
          details: { fields: built.fields.slice(0, 200), ids: page.records.map((r) => r.id) },
        }),
      );
    }
    return page;
  }

  /** ObjectQL: a governed list, or aggregates with groupBy, optionally expanding lookups. */
  async query(principal: PrincipalSnapshot, spec: ListSpec, raw: Record<string, unknown>): Promise<ListResult | { groups: Row[] }> {
    if (raw.aggregations === undefined && raw.groupBy !== undefined) throw bad('groupBy needs aggregations', '/groupBy');
    if (raw.aggregations !== undefined) {
      if (raw.expand !== undefined || raw.cursor !== undefined || raw.orderBy !== undefined || raw.fields !== undefined)
        throw bad('Aggregations take object, where, groupBy and limit only', '/aggregations');
      const { aggregations, groupBy } = parseAggregations(raw.aggregations, raw.groupBy);
      const { decision, def } = await this.context(principal, spec.object);
      if (!decision.can('read', spec.object)) throw new PolicyError('action_not_allowed', { action: 'read', object: spec.object });
      const built = buildAggregateSql(decision, def, principal.orgId, spec, aggregations, groupBy);
      const rows: Row[] = await this.ds.query(built.text, built.params);
      return { groups: aggregateRows(def, rows, aggregations, groupBy) };
    }
    const expand = raw.expand;
    if (expand !== undefined && (!Array.isArray(expand) || expand.length > MAX_EXPAND || expand.some((e) => typeof e !== 'string')))
      throw bad(`expand is a list of at most ${MAX_EXPAND} lookup fields`, '/expand');
    const page = await this.list(principal, spec);
    if (expand && expand.length > 0) await this.expand(principal, spec.object, page.records, expand as string[]);
    return page;
  }

  /**
   * Replaces nothing: adds `expanded.<field>` with the referenced record as the caller may see it
   * (its own row filter and fields), or null when it is not visible. One statement per field.
   */
  private async expand(principal: PrincipalSnapshot, object: string, records: Row[], fields: string[]): Promise<void> {
    const { decision, def } = await this.context(principal, object);
    decision.assertReadable(object, fields);
    for (const field of fields) {
      const f = def.fields.find((x) => x.name === field);
      if (!f || !f.reference) throw bad('Only lookup fields can be expanded', `/expand/${field}`);
      const target = f.reference;
      // A lookup path into an object the caller cannot read is refused, never answered empty (O4).
      if (!decision.objectVisible(target) || !decision.can('read', target)) throw new PolicyError('field_not_readable', { object, field });
      const targetDef = (await this.context(principal, target)).def;
      const targetFields = selectFields(decision, target, undefined);
      const ids = [...new Set(records.map((r) => r[field]).filter((v): v is string => typeof v === 'string'))];
      const found = new Map<string, Row>();
      if (ids.length > 0) {
        const filter = decision.rowFilter('read', target, { alias: 't', paramOffset: 1 });
        const rows: Row[] = await this.ds.query(
          `SELECT ${targetFields.map((c) => `t.${quoteIdent(c)}`).join(', ')} FROM ${recordTable(principal.orgId, target)} t WHERE t.id = ANY($1::uuid[]) AND ${filter.text}`,
          [ids, ...filter.params],
        );
        for (const row of rows) found.set(String(row.id), toApiRecord(targetDef, row, targetFields));
      }
      for (const r of records) {
        const expanded = (r.expanded ?? {}) as Row;
        expanded[field] = typeof r[field] === 'string' ? (found.get(r[field] as string) ?? null) : null;
        r.expanded = expanded;
      }
    }
  }

  async get(principal: PrincipalSnapshot, object: string, id: string): Promise<Record<string, unknown>> {
    const { decision, def } = await this.context(principal, object);
    recordId(id);
    const fields = decision.readableFields(object);
    if (fields.length === 0) throw notFound();
    const row = await this.readRow(this.ds.manager, decision, principal.orgId, object, id, 'read', false);
    if (!row) throw notFound();
    if (def.auditReads) {
      await this.ds.transaction((m) =>
        this.outbox.append(m, {
          orgId: principal.orgId,
          action: 'objects.record.read',
          outcome: 'success',
          target: { type: object, id },
          details: { fields: [...fields] },
        }),
      );
    }
    return toApiRecord(def, row, fields);
  }

  /** POST with optional Idempotency-Key (F1): the same key and body answer the first result again. */
  async create(
    principal: PrincipalSnapshot,
    object: string,
    body: unknown,
    idempotencyKey?: string,
    opts: WriteOptions = {},
  ): Promise<WriteResult> {
    const { decision, def } = await this.context(principal, object);
    const { ownerId, rest } = await this.ownerFor(principal, decision, object, body);
    const input = this.checkBody(decision, def, rest, 'create');
    const values = this.values(def, input, 'create');
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
    const { decision, def } = await this.context(principal, object);
    recordId(id);
    // A dry-run may omit the version: it answers the current one.
    const expected = parseIfMatch(ifMatch, !opts.dryRun);
    const input = this.checkBody(decision, def, body, 'edit');
    const values = this.values(def, input, 'edit');
    return this.withRetry(() =>
      this.rollbackIf(opts, async (m) => {
        const before = await this.lockForWrite(m, decision, principal.orgId, object, id, 'edit');
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
        const changes: Record<string, { from: unknown; to: unknown }> = {};
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
    const { decision, def } = await this.context(principal, object);
    recordId(id);
    const expected = parseIfMatch(ifMatch, false);
    let fileKeys: string[] = [];
    const result = await this.withRetry(() =>
      this.rollbackIf(opts, async (m) => {
        const before = await this.lockForWrite(m, decision, principal.orgId, object, id, 'delete');
        fileKeys = this.fileKeysOf(principal.orgId, def, before);
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

  /** Storage keys of the files a record's file fields name (see apps/objects/src/files). */
  private fileKeysOf(orgId: string, def: StoredObjectDefinition, row: Row): string[] {
    const keys: string[] = [];
    for (const f of def.fields) {
      if (f.type !== 'file' || typeof row[f.name] !== 'string') continue;
      const fileId = (JSON.parse(row[f.name] as string) as { id?: unknown }).id;
      if (typeof fileId === 'string' && UUID.test(fileId))
        keys.push(storageKey({ orgId, object: def.name, recordId: String(row.id), field: f.name, fileId }));
    }
    return keys;
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

  /**
   * Locks the record for a write: invisible (missing, other org, no read access) → 404; visible
   * but below the level the action needs → 403 (the caller may already see it).
   */
  async lockForWrite(
    m: EntityManager,
    decision: Decision,
    orgId: string,
    object: string,
    id: string,
    action: 'edit' | 'delete' | 'share' | 'transfer',
  ): Promise<Row> {
    const row = await this.readRow(m, decision, orgId, object, id, 'read', true);
    if (!row) throw notFound();
    const allowed = await this.readRow(m, decision, orgId, object, id, action, false);
    if (!allowed) throw new PolicyError('action_not_allowed', { action, object });
    return row;
  }

  /** One statement: the record by id AND the policy row filter for `action`. */
  async readRow(
    m: EntityManager,
    decision: Decision,
    orgId: string,
    object: string,
    id: string,
    action: 'read' | 'edit' | 'delete' | 'share' | 'transfer',
    lock: boolean,
  ): Promise<Row | undefined> {
    const filter = decision.rowFilter(action, object, { alias: 't', paramOffset: 1 });
    if (filter.text === 'FALSE') return undefined;
    const rows: Row[] = await m.query(
      `SELECT t.* FROM ${recordTable(orgId, object)} t WHERE t.id = $1 AND ${filter.text}${lock ? ' FOR UPDATE OF t' : ''}`,
      [id, ...filter.params],
    );
    return rows[0];
  }

  /** O3 before R5: system and unknown fields are 400 (nothing written); then fields below edit are 403. */
  private checkBody(decision: Decision, def: StoredObjectDefinition, body: unknown, action: 'create' | 'edit'): Row {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('The record is a JSON object', '/');
    const input = body as Row;
    const keys = Object.keys(input);
    if (keys.length > MAX_WRITE_FIELDS) throw bad('Too many fields', '/');
    if (action === 'edit' && keys.length === 0) throw bad('Nothing to change', '/');
    for (const key of keys) {
      if (isSystemField(key)) throw new PolicyError('system_field_not_writable', { object: def.name, field: key });
      if (!def.fields.some((f) => f.name === key)) throw bad('Unknown field', `/${key.slice(0, 64)}`);
    }
    decision.assertWritable(action, def.name, input);
    return input;
  }

  /** Validated column values; on create, defaults and required fields are applied. */
  private values(def: StoredObjectDefinition, input: Row, action: 'create' | 'edit'): Row {
    const out: Row = {};
    const put = (f: FieldDefinition, v: unknown): void => {
      try {
        out[f.name] = toColumnValue(f, v);
      } catch (error) {
        if (error instanceof FieldValueError) throw bad(`Invalid value: ${error.reason}`, `/${f.name}`);
        throw error;
      }
    };
    for (const f of def.fields) {
      if (Object.prototype.hasOwnProperty.call(input, f.name)) put(f, input[f.name]);
      else if (action === 'create' && f.default !== undefined) put(f, f.default);
      else if (action === 'create' && f.required) throw bad('Required field missing', `/${f.name}`);
    }
    return out;
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
      const ok = await this.readRow(
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
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (error) {
        if (isUniqueViolation(error)) throw new CustodianException(ErrorCode.Conflict, 'A unique field already has this value');
        if (!isRetryableTransactionError(error) || attempt >= MAX_TX_ATTEMPTS) throw error;
      }
    }
  }
}
