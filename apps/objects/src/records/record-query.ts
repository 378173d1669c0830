import { createHash } from 'node:crypto';
import { ErrorCode } from '@custodian/contracts';
import { CustodianException } from '@custodian/platform';
import {
  DEFAULT_WHERE_LIMITS,
  PolicyError,
  SYSTEM_FIELDS,
  isSafeName,
  quoteIdent,
  sqlOfPlan,
  type Decision,
  type WhereLimits,
} from '@custodian/policy';
import { REPLICA_STATE_SQL } from '../directory/directory-replica.service';
import { columnType, columnValueIsApiValue, fromColumnValue } from '../metadata/field-types';
import { STAMP_SQL } from '../metadata/object-catalog.service';
import type { RecordFieldType, StoredObjectDefinition } from '../metadata/object-definition.schema';
import { recordTable } from '../metadata/org-tables';

export const MAX_LIMIT = 200;
export const DEFAULT_LIMIT = 50;
export const MAX_OFFSET = 10_000;
export const MAX_ORDER_KEYS = 3;
export const MAX_CURSOR_CHARS = 4096;

/** Record ids live in uuid columns: a filter value for an id field must be a UUID (400 otherwise). */
export const RECORD_WHERE_LIMITS: WhereLimits = Object.freeze({ ...DEFAULT_WHERE_LIMITS, idFormat: 'uuid' });

export interface OrderKey {
  field: string;
  order: 'asc' | 'desc';
}

/** A validated list request (REST query parameters and ObjectQL share it). */
export interface ListSpec {
  object: string;
  fields?: string[];
  where?: unknown;
  orderBy: OrderKey[];
  limit: number;
  offset: number;
  cursor?: string;
}

export interface ListResult {
  records: Array<Record<string, unknown>>;
  nextCursor?: string;
  limit: number;
  offset?: number;
}

const SYSTEM_COLUMN_TYPES: Readonly<Record<string, string>> = {
  id: 'uuid',
  org_id: 'uuid',
  owner_id: 'uuid',
  created_by: 'uuid',
  updated_by: 'uuid',
  created_at: 'timestamptz',
  updated_at: 'timestamptz',
  version: 'integer',
};

export function bad(message: string, path: string): CustodianException {
  return new CustodianException(ErrorCode.ValidationFailed, message, { issues: [{ path, message }] });
}

/** Type of a field for conversions: the declared type, or 'system'. */
export function typeOfField(def: StoredObjectDefinition, field: string): RecordFieldType | 'system' | undefined {
  if (Object.prototype.hasOwnProperty.call(SYSTEM_FIELDS, field)) return 'system';
  return def.fields.find((f) => f.name === field)?.type;
}

function sqlTypeOf(def: StoredObjectDefinition, field: string): string {
  const sys = SYSTEM_COLUMN_TYPES[field];
  if (sys) return sys;
  const f = def.fields.find((x) => x.name === field)!;
  return columnType(f.type);
}

/** Converts a row read from SQL into the API form with only `fields`. */
export function toApiRecord(def: StoredObjectDefinition, row: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  return apiRecordConverter(def, fields)(row);
}

/** `toApiRecord` for many rows of one shape: the field types are looked up once, not per row. */
export function apiRecordConverter(
  def: StoredObjectDefinition,
  fields: readonly string[],
): (row: Record<string, unknown>) => Record<string, unknown> {
  const types = fields.map((field) => typeOfField(def, field) ?? 'system');
  // Fields whose column value is the API value (null and Date aside) skip fromColumnValue.
  const plain = types.map((type) => columnValueIsApiValue(type));
  return (row) => {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < fields.length; i++) {
      const field = fields[i];
      const value = row[field];
      if (value === undefined) {
        if (!Object.prototype.hasOwnProperty.call(row, field)) continue;
        out[field] = null;
      } else if (plain[i] && value !== null && !(value instanceof Date)) out[field] = value;
      else out[field] = fromColumnValue(types[i], value);
    }
    return out;
  };
}

/** The fields to return: asked ones (each must be readable: 403 otherwise), or every readable field. */
export function selectFields(decision: Decision, object: string, asked: readonly string[] | undefined): string[] {
  const readable = decision.readableFields(object);
  if (!asked) return [...readable];
  for (const f of asked)
    if (typeof f !== 'string' || !isSafeName(f)) throw new PolicyError('invalid_name', { field: String(f).slice(0, 64) });
  decision.assertReadable(object, asked);
  const set = new Set(asked);
  set.add('id');
  return [...set];
}

function isText(def: StoredObjectDefinition, field: string): boolean {
  return sqlTypeOf(def, field) === 'text';
}

function shapeHash(spec: ListSpec): string {
  return createHash('sha256')
    .update(JSON.stringify([spec.object, spec.orderBy, spec.where ?? null]))
    .digest('base64url')
    .slice(0, 16);
}

interface CursorState {
  h: string;
  k: Array<string | null>;
  id: string;
}

const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const INT4_TEXT = /^-?\d{1,10}$/;
const FLOAT8_TEXT = /^-?(?:\d+(?:\.\d+)?(?:e[+-]?\d+)?|Infinity)$|^NaN$/;
const FLOAT8_ZERO = /^-?0+(?:\.0+)?(?:e[+-]?\d+)?$/;
/** timestamptz as PostgreSQL writes it in the ISO DateStyle (what `::text` gave the cursor). */
const TIMESTAMPTZ_TEXT = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?[+-](\d{2})(?::(\d{2})(?::(\d{2}))?)?$/;

function calendarDay(year: number, month: number, day: number): boolean {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 ? (leap ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
  return year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= days;
}

/**
 * Whether a cursor's key is text the database can read back as the sort column's type. The
 * cursor travels through the client, so a tampered key must be refused here: a cast that fails
 * in PostgreSQL would fail the whole statement.
 */
function validKeyText(sqlType: string, value: string): boolean {
  switch (sqlType) {
    case 'uuid':
      return UUID_TEXT.test(value);
    case 'integer':
      return INT4_TEXT.test(value) && Math.abs(Number(value)) <= 2 ** 31 - (value.startsWith('-') ? 0 : 1);
    case 'double precision': {
      if (!FLOAT8_TEXT.test(value)) return false;
      const n = Number(value);
      // Out of range both ways: PostgreSQL refuses what overflows to infinity or underflows to zero.
      return value.endsWith('Infinity') || value === 'NaN' || (Number.isFinite(n) && (n !== 0 || FLOAT8_ZERO.test(value)));
    }
    case 'boolean':
      return value === 'true' || value === 'false';
    case 'timestamptz': {
      const m = TIMESTAMPTZ_TEXT.exec(value);
      if (!m || !calendarDay(Number(m[1]), Number(m[2]), Number(m[3]))) return false;
      return (
        Number(m[4]) <= 23 &&
        Number(m[5]) <= 59 &&
        Number(m[6]) <= 59 &&
        Number(m[7]) <= 15 &&
        Number(m[8] ?? 0) <= 59 &&
        Number(m[9] ?? 0) <= 59
      );
    }
    default:
      // text: anything PostgreSQL can hold, which is everything but NUL.
      return !value.includes('\u0000');
  }
}

function decodeCursor(raw: string, shape: string, def: StoredObjectDefinition, keys: readonly OrderKey[]): CursorState {
  const invalid = (): never => {
    throw bad('Invalid cursor', '/cursor');
  };
  if (raw.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]+$/.test(raw)) return invalid();
  let state: CursorState;
  try {
    state = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as CursorState;
  } catch {
    return invalid();
  }
  if (
    typeof state !== 'object' ||
    state === null ||
    state.h !== shape ||
    typeof state.id !== 'string' ||
    !UUID_TEXT.test(state.id) ||
    !Array.isArray(state.k) ||
    state.k.length !== keys.length ||
    state.k.some((v, i) => v !== null && (typeof v !== 'string' || v.length > 2048 || !validKeyText(sqlTypeOf(def, keys[i].field), v)))
  )
    return invalid();
  return state;
}

/**
 * One SQL statement per list: the caller's projection, the policy row filter AND the user's where
 * (both from libs/policy, one parameter space), keyset or offset paging. NULLs sort last ascending,
 * first descending (PostgreSQL's default), text in code-point order; `id` breaks ties, so the order
 * is total and a keyset cursor never skips or repeats a row (O10).
 */
export function buildListSql(
  decision: Decision,
  def: StoredObjectDefinition,
  orgId: string,
  spec: ListSpec,
  opts: {
    /**
     * Also select `"__stamp"` (the org's metadata stamp) and `"__replica"` (the directory replica
     * state) on every row — uncorrelated subqueries, evaluated once, in the rows' own snapshot — so
     * the caller can prove the decision was made on current metadata and a fresh replica.
     */
    guard?: boolean;
  } = {},
): {
  text: string;
  params: unknown[];
  fields: string[];
  keyCount: number;
  /** The request's shape (object, order, filter) that its cursors carry; computed once per statement. */
  shape: string;
  /** Turns a fetched row into the API record of `fields` (field types looked up once per statement). */
  convert: (row: Record<string, unknown>) => Record<string, unknown>;
} {
  const fields = selectFields(decision, spec.object, spec.fields);
  const shape = shapeHash(spec);
  const orderFields = spec.orderBy.map((o) => o.field);
  decision.assertReadable(spec.object, orderFields);
  const filter = decision.listFilter('read', spec.object, spec.where ?? {}, { alias: 't' });
  const params: unknown[] = [...filter.params];
  const add = (v: unknown): string => {
    params.push(v);
    return `$${params.length}`;
  };
  const keys = [
    ...spec.orderBy.filter((o) => o.field !== 'id'),
    { field: 'id', order: spec.orderBy.find((o) => o.field === 'id')?.order ?? 'asc' },
  ];
  const expr = (field: string): string => {
    const col = `t.${quoteIdent(field)}`;
    return isText(def, field) ? `${col} COLLATE "C"` : col;
  };
  const conditions = [sqlOfPlan(filter.plan)];
  if (spec.cursor) {
    const state = decodeCursor(spec.cursor, shape, def, keys.slice(0, -1));
    const values: Array<string | null> = [...state.k, state.id];
    const ors: string[] = [];
    for (let i = 0; i < keys.length; i++) {
      const ands: string[] = [];
      for (let j = 0; j < i; j++) {
        const v = values[j];
        ands.push(
          v === null ? `t.${quoteIdent(keys[j].field)} IS NULL` : `${expr(keys[j].field)} = ${add(v)}::${sqlTypeOf(def, keys[j].field)}`,
        );
      }
      const v = values[i];
      const k = keys[i];
      const col = `t.${quoteIdent(k.field)}`;
      if (k.order === 'asc') {
        // Ascending, NULLS LAST: after a value come larger values and NULLs; nothing comes after NULL.
        if (v === null) continue;
        ands.push(`(${expr(k.field)} > ${add(v)}::${sqlTypeOf(def, k.field)} OR ${col} IS NULL)`);
      } else {
        // Descending, NULLS FIRST: after NULL come all values; after a value, smaller values.
        ands.push(v === null ? `${col} IS NOT NULL` : `${expr(k.field)} < ${add(v)}::${sqlTypeOf(def, k.field)}`);
      }
      ors.push(`(${ands.join(' AND ')})`);
    }
    conditions.push(ors.length > 0 ? `(${ors.join(' OR ')})` : 'FALSE');
  }
  const order = keys.map((k) => `${expr(k.field)} ${k.order === 'asc' ? 'ASC NULLS LAST' : 'DESC NULLS FIRST'}`).join(', ');
  const keyColumns = keys.slice(0, -1).map((k, i) => `, t.${quoteIdent(k.field)}::text AS "__k${i}"`);
  const select = fields.map((f) => `t.${quoteIdent(f)}`).join(', ');
  let guard = '';
  if (opts.guard) {
    const org = add(orgId);
    guard = `, ${STAMP_SQL.replaceAll('$1', `${org}::uuid`)} AS "__stamp", ${REPLICA_STATE_SQL.replaceAll('$1', `${org}::uuid`)} AS "__replica"`;
  }
  const text =
    `SELECT ${select}${keyColumns.join('')}${guard}, t.id::text AS "__id" FROM ${recordTable(orgId, spec.object)} t ` +
    `WHERE ${conditions.join(' AND ')} ORDER BY ${order} LIMIT ${add(spec.limit + 1)}` +
    (spec.offset > 0 ? ` OFFSET ${add(spec.offset)}` : '');
  return { text, params, fields, keyCount: keys.length - 1, shape, convert: apiRecordConverter(def, fields) };
}

/** Turns the fetched rows (limit + 1) into a page with the cursor of its last row. */
export function pageOf(
  def: StoredObjectDefinition,
  spec: ListSpec,
  built: { fields: string[]; keyCount: number; shape?: string; convert?: (row: Record<string, unknown>) => Record<string, unknown> },
  rows: Array<Record<string, unknown>>,
): ListResult {
  const more = rows.length > spec.limit;
  const count = more ? spec.limit : rows.length;
  const convert = built.convert ?? apiRecordConverter(def, built.fields);
  const records: Array<Record<string, unknown>> = new Array<Record<string, unknown>>(count);
  for (let i = 0; i < count; i++) records[i] = convert(rows[i]);
  const result: ListResult = { records, limit: spec.limit };
  if (spec.offset > 0) result.offset = spec.offset;
  if (more) {
    const last = rows[count - 1];
    const state: CursorState = {
      h: built.shape ?? shapeHash(spec),
      k: Array.from({ length: built.keyCount }, (_, i) => (last[`__k${i}`] as string | null) ?? null),
      id: last.__id as string,
    };
    result.nextCursor = Buffer.from(JSON.stringify(state)).toString('base64url');
  }
  return result;
}
