import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Transform, pipeline, type Readable, type TransformCallback } from 'node:stream';
import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, type PrincipalSnapshot } from '@custodian/contracts';
import {
  CONFIG,
  CustodianException,
  LOGGER,
  OutboxWriter,
  SERVICE_DATA_SOURCE,
  isRetryableTransactionError,
  retryWithBackoff,
  uuidv7,
  type CustodianConfig,
} from '@custodian/platform';
import { PolicyError, quoteIdent, type Decision } from '@custodian/policy';
import type { Logger } from 'pino';
import type { DataSource, EntityManager } from 'typeorm';
import { ApprovalGateService } from '../approvals/approval-gate.service';
import { FIELD_NAME_PATTERN, type FieldDefinition, type StoredObjectDefinition } from '../metadata/object-definition.schema';
import { recordTable } from '../metadata/org-tables';
import { toApiRecord } from '../records/record-query';
import { RecordQueryService } from '../records/record-query.service';
import { lockForWrite, parseIfMatch, readRow, recordId } from '../records/record-rows';
import { FILE_STORAGE, storageKey, type FileStorage } from './file-storage';
import { contentTypeOf, fileNameOf } from './file-headers';

/** The value of a `file` field: metadata only; the storage key is derived on the server. */
export interface FileValue {
  id: string;
  name: string;
  size: number;
  contentType: string;
  sha256: string;
  uploadedAt: string;
}

export interface FileWriteResult {
  record: Record<string, unknown>;
}

export interface FileDownload {
  file: FileValue;
  body: Readable;
}

type Row = Record<string, unknown>;

const FIELD_NAME = new RegExp(FIELD_NAME_PATTERN);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAX_TX_ATTEMPTS = 4;

function bad(message: string, path: string): CustodianException {
  return new CustodianException(ErrorCode.ValidationFailed, message, { issues: [{ path, message }] });
}

function tooLarge(max: number): CustodianException {
  return new CustodianException(ErrorCode.PayloadTooLarge, `The file is larger than ${max} bytes`, { maxBytes: max });
}

/** Counts and hashes the bytes as they pass; fails as soon as more arrive than were announced. */
class Meter extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;

  constructor(private readonly limit: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) return done(new SizeExceeded());
    this.hash.update(chunk);
    done(null, chunk);
  }
}

class SizeExceeded extends Error {}

/** A stored value, checked before it names a storage key (it is server-written, but never trusted blindly). */
function fileValueOf(raw: unknown): FileValue | undefined {
  if (raw === null || raw === undefined) return undefined;
  const v = (typeof raw === 'string' ? JSON.parse(raw) : raw) as Partial<FileValue>;
  if (typeof v !== 'object' || v === null || typeof v.id !== 'string' || !UUID.test(v.id)) return undefined;
  return v as FileValue;
}

/**
 * Uploaded files of `file` fields (docs/files.md). Access is the records API's: the record's row
 * filter (read to download, edit to change) and the field's read/edit level. Content is written
 * before the record changes and removed again if that transaction fails; replaced or deleted
 * content is removed after the commit.
 */
@Injectable()
export class FilesService {
  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(RecordQueryService) private readonly records: RecordQueryService,
    @Inject(ApprovalGateService) private readonly gate: ApprovalGateService,
    @Inject(FILE_STORAGE) private readonly storage: FileStorage,
    @Inject(CONFIG) private readonly config: CustodianConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** The file field `field` of `object` the caller may change, or the refusal records would give. */
  private async writable(principal: PrincipalSnapshot, object: string, id: string, field: string) {
    const ctx = await this.records.context(principal, object);
    recordId(id);
    const name = fieldName(field);
    // The same check as a PATCH of this field: unknown and hidden fields answer alike.
    ctx.decision.assertWritable('edit', object, { [name]: true });
    const def = fileField(ctx.def, name);
    // An upload cannot be filed as a pending action: where changes need approval, it is refused.
    if (await this.gate.requiresApproval(principal.orgId, object, 'update'))
      throw new CustodianException(ErrorCode.Conflict, 'Changes of this object need approval; files cannot be changed through approvals');
    return { decision: ctx.decision, def: ctx.def, field: def };
  }

  async upload(
    principal: PrincipalSnapshot,
    object: string,
    id: string,
    field: string,
    body: Readable,
    headers: IncomingHttpHeaders,
  ): Promise<FileWriteResult> {
    const { decision, def } = await this.writable(principal, object, id, field);
    const expected = parseIfMatch(headers['if-match'], true)!;
    const limits = this.config.files;
    const contentType = contentTypeOf(headers['content-type'], limits.allowedContentTypes);
    // The bytes are stored as sent; an encoded body would be stored encoded and served as if it were not.
    const encoding = headers['content-encoding'];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity')
      throw new CustodianException(ErrorCode.UnsupportedMediaType, 'Uploads are stored as sent: no Content-Encoding');
    const name = fileNameOf(headers['content-disposition']);
    const lengthHeader = headers['content-length'];
    if (headers['transfer-encoding'] !== undefined || lengthHeader === undefined || !/^\d{1,15}$/.test(lengthHeader))
      throw new CustodianException(ErrorCode.BadRequest, 'An upload needs a Content-Length (no chunked transfer)');
    const size = Number(lengthHeader);
    if (size > limits.maxBytes) throw tooLarge(limits.maxBytes);

    // Refuse before any byte is stored when the record is not there or not editable for the caller.
    const current = await readRow(this.ds.manager, decision, principal.orgId, object, id, 'read', false);
    if (!current) throw CustodianException.notFound('Record not found');
    if (!(await readRow(this.ds.manager, decision, principal.orgId, object, id, 'edit', false)))
      throw new PolicyError('action_not_allowed', { action: 'edit', object });
    checkVersion(current, expected);

    const fileId = uuidv7();
    const key = storageKey({ orgId: principal.orgId, object, recordId: id, field, fileId });
    const meter = new Meter(size);
    const stream = pipeline(body, meter, () => undefined);
    try {
      await this.storage.put(key, stream, { size, contentType });
    } catch (error) {
      if (error instanceof SizeExceeded) throw tooLarge(limits.maxBytes);
      if (meter.bytes < size && (body.destroyed || (body as { aborted?: boolean }).aborted))
        throw new CustodianException(ErrorCode.BadRequest, 'The upload ended before Content-Length bytes arrived');
      this.logger.error({ err: error, storage: this.storage.kind }, 'file storage write failed');
      throw new CustodianException(ErrorCode.ServiceUnavailable, 'File storage is not available');
    }
    if (meter.bytes !== size) {
      await this.removeQuietly(key);
      throw new CustodianException(ErrorCode.BadRequest, 'The upload ended before Content-Length bytes arrived');
    }
    const value: FileValue = {
      id: fileId,
      name,
      size,
      contentType,
      sha256: meter.hash.digest('hex'),
      uploadedAt: new Date().toISOString(),
    };
    let previous: FileValue | undefined;
    let result: FileWriteResult;
    try {
      const written = await this.change(principal, decision, def, id, field, expected, value, 'objects.record.file.uploaded');
      previous = written.previous;
      result = { record: written.record };
    } catch (error) {
      await this.removeQuietly(key);
      throw error;
    }
    if (previous) await this.removeQuietly(this.keyOf(principal.orgId, object, id, field, previous));
    return result;
  }

  async remove(
    principal: PrincipalSnapshot,
    object: string,
    id: string,
    field: string,
    ifMatch: string | undefined,
  ): Promise<FileWriteResult> {
    const { decision, def } = await this.writable(principal, object, id, field);
    const expected = parseIfMatch(ifMatch, false);
    const written = await this.change(principal, decision, def, id, field, expected, null, 'objects.record.file.deleted');
    if (!written.previous) throw CustodianException.notFound('No file stored in this field');
    await this.removeQuietly(this.keyOf(principal.orgId, object, id, field, written.previous));
    return { record: written.record };
  }

  async download(principal: PrincipalSnapshot, object: string, id: string, field: string): Promise<FileDownload> {
    const { decision, def } = await this.records.context(principal, object);
    recordId(id);
    const name = fieldName(field);
    const row = await readRow(this.ds.manager, decision, principal.orgId, object, id, 'read', false);
    if (!row) throw CustodianException.notFound('Record not found');
    // A field below read answers as REST does when such a field is selected: 403 field_not_readable.
    decision.assertReadable(object, [name]);
    fileField(def, name);
    const file = fileValueOf(row[name]);
    if (!file) throw CustodianException.notFound('No file stored in this field');
    const body = await this.storage.get(this.keyOf(principal.orgId, object, id, name, file)).catch((error: unknown) => {
      this.logger.error({ err: error, storage: this.storage.kind }, 'file storage read failed');
      throw new CustodianException(ErrorCode.ServiceUnavailable, 'File storage is not available');
    });
    if (!body) {
      this.logger.warn({ object, recordId: id, field: name, fileId: file.id }, 'stored file missing');
      throw CustodianException.notFound('No file stored in this field');
    }
    try {
      await this.ds.transaction((m) =>
        this.outbox.append(m, {
          orgId: principal.orgId,
          action: 'objects.record.file.downloaded',
          outcome: 'success',
          target: { type: object, id },
          details: { values: { [name]: file } },
        }),
      );
    } catch (error) {
      body.destroy();
      throw error;
    }
    return { file, body };
  }

  /** One transaction: lock the record (edit), check its version, set the field, bump the version, audit. */
  private async change(
    principal: PrincipalSnapshot,
    decision: Decision,
    def: StoredObjectDefinition,
    id: string,
    field: string,
    expected: number | undefined,
    value: FileValue | null,
    action: 'objects.record.file.uploaded' | 'objects.record.file.deleted',
  ): Promise<{ record: Row; previous?: FileValue }> {
    return retryWithBackoff(
      () =>
        this.ds.transaction(async (m: EntityManager) => {
          const before = await lockForWrite(m, decision, principal.orgId, def.name, id, 'edit');
          checkVersion(before, expected);
          const previous = fileValueOf(before[field]);
          if (value === null && !previous) return { record: {} };
          const [rows] = (await m.query(
            `UPDATE ${recordTable(principal.orgId, def.name)} SET ${quoteIdent(field)} = $3, version = version + 1, updated_at = now(), updated_by = $4
              WHERE id = $1 AND org_id = $2 RETURNING *`,
            [id, principal.orgId, value === null ? null : JSON.stringify(value), principal.userId],
          )) as [Row[], number];
          const after = toApiRecord(def, rows[0], Object.keys(rows[0]));
          await this.outbox.append(m, {
            orgId: principal.orgId,
            action,
            outcome: 'success',
            target: { type: def.name, id },
            details: { changes: { [field]: { from: previous ?? null, to: value } }, version: Number(after.version) },
          });
          return { record: decision.projectReadable(def.name, after), ...(previous ? { previous } : {}) };
        }),
      { attempts: MAX_TX_ATTEMPTS, isRetryable: isRetryableTransactionError },
    );
  }

  private keyOf(orgId: string, object: string, id: string, field: string, file: FileValue): string {
    return storageKey({ orgId, object, recordId: id, field, fileId: file.id });
  }

  /** Content no record names any more; a failure leaves an orphan, which is logged, never a broken record. */
  private async removeQuietly(key: string): Promise<void> {
    try {
      await this.storage.delete(key);
    } catch (error) {
      this.logger.warn({ err: error, storage: this.storage.kind }, 'file storage delete failed; content left orphaned');
    }
  }
}

function fieldName(field: string): string {
  if (!FIELD_NAME.test(field)) throw bad('Invalid field name', '/params/field');
  return field;
}

function fileField(def: StoredObjectDefinition, name: string): FieldDefinition {
  const f = def.fields.find((x) => x.name === name);
  if (!f || f.type !== 'file') throw bad('Not a file field', '/params/field');
  return f;
}

function checkVersion(row: Row, expected: number | undefined): void {
  if (expected !== undefined && Number(row.version) !== expected)
    throw new CustodianException(ErrorCode.PreconditionFailed, 'The record has changed (version mismatch)', {
      currentVersion: Number(row.version),
    });
}
