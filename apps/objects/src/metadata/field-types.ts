import type { FieldType } from '@custodian/policy';
import type { FieldDefinition, RecordFieldType } from './object-definition.schema';

/** How each record field type is stored and how the policy library sees it (docs/objects.md). */
interface TypeInfo {
  /** PostgreSQL column type. */
  readonly column: string;
  /** The policy library's field type (drives ObjectQL value checks and the SQL compiler). */
  readonly policy: FieldType;
}

const TYPES: Readonly<Record<RecordFieldType, TypeInfo>> = {
  text: { column: 'text', policy: 'string' },
  email: { column: 'text', policy: 'string' },
  url: { column: 'text', policy: 'string' },
  select: { column: 'text', policy: 'string' },
  // ISO dates as text compare correctly in code-point order, exactly as the policy library expects.
  date: { column: 'text', policy: 'string' },
  // Stored as "a;b;c" (Salesforce's multi-picklist form) so $contains works; answered as an array.
  multiselect: { column: 'text', policy: 'text' },
  // JSON kept as its text: filtering on it is equality on that text at most.
  json: { column: 'text', policy: 'text' },
  number: { column: 'double precision', policy: 'number' },
  currency: { column: 'double precision', policy: 'number' },
  boolean: { column: 'boolean', policy: 'boolean' },
  datetime: { column: 'timestamptz', policy: 'datetime' },
  lookup: { column: 'uuid', policy: 'lookup' },
  master_detail: { column: 'uuid', policy: 'master_detail' },
  // The file's metadata as JSON text ({ id, name, size, contentType, sha256, uploadedAt }).
  file: { column: 'text', policy: 'text' },
};

export function columnType(type: RecordFieldType): string {
  return TYPES[type].column;
}

export function policyType(type: RecordFieldType): FieldType {
  return TYPES[type].policy;
}

const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,255}\.[^\s@]{1,63}$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const MAX_JSON_CHARS = 65_536;
const DEFAULT_TEXT_LENGTH = 255;

/** Thrown with a reason; the caller turns it into a 400 naming the field. */
export class FieldValueError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

/** Validates one input value against its field and returns the value to bind (null allowed unless required). */
export function toColumnValue(field: FieldDefinition, value: unknown): unknown {
  // Only the files route writes a file field: its value must always describe content that is stored.
  if (field.type === 'file') throw new FieldValueError(field.name, 'a file field is changed by uploading to its files route');
  if (value === null) {
    if (field.required) throw new FieldValueError(field.name, 'required');
    return null;
  }
  const bad = (reason: string): never => {
    throw new FieldValueError(field.name, reason);
  };
  switch (field.type) {
    case 'text':
    case 'email':
    case 'url': {
      if (typeof value !== 'string') return bad('expected a string');
      if (value.includes('\u0000')) return bad('contains NUL');
      const max = field.type === 'text' ? (field.maxLength ?? DEFAULT_TEXT_LENGTH) : 2048;
      if (value.length > max) return bad(`longer than ${max} characters`);
      if (field.type === 'email' && !EMAIL.test(value)) return bad('not an email address');
      if (field.type === 'url') {
        let url: URL | undefined;
        try {
          url = new URL(value);
        } catch {
          url = undefined;
        }
        if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) return bad('not an http(s) URL');
      }
      return value;
    }
    case 'select':
      if (typeof value !== 'string' || !(field.options ?? []).includes(value)) return bad('not one of the options');
      return value;
    case 'multiselect': {
      if (!Array.isArray(value) || value.length > MAX_OPTIONS_SELECTED) return bad('expected an array of options');
      const options = field.options ?? [];
      for (const v of value) if (typeof v !== 'string' || !options.includes(v)) return bad('not one of the options');
      return [...new Set(value as string[])].join(';');
    }
    case 'json': {
      const text = JSON.stringify(value);
      if (text.length > MAX_JSON_CHARS) return bad('JSON too large');
      return text;
    }
    case 'number':
    case 'currency':
      if (typeof value !== 'number' || !Number.isFinite(value)) return bad('expected a finite number');
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') return bad('expected a boolean');
      return value;
    case 'date':
      if (typeof value !== 'string' || !DATE.test(value) || !validDate(value)) return bad('expected YYYY-MM-DD');
      return value;
    case 'datetime':
      if (typeof value !== 'string' || !DATETIME.test(value) || !Number.isFinite(Date.parse(value)))
        return bad('expected an ISO 8601 date-time');
      return new Date(value).toISOString();
    case 'lookup':
    case 'master_detail':
      if (typeof value !== 'string' || !UUID.test(value)) return bad('expected a record id');
      return value;
  }
}

const MAX_OPTIONS_SELECTED = 200;

function validDate(value: string): boolean {
  const d = new Date(`${value}T00:00:00Z`);
  return Number.isFinite(d.getTime()) && d.toISOString().slice(0, 10) === value;
}

/**
 * Whether fromColumnValue answers a value of this type as it came from the column, null and Date
 * aside (null stays null, a Date becomes its ISO text, for every type).
 */
export function columnValueIsApiValue(type: RecordFieldType | 'system'): boolean {
  return type !== 'multiselect' && type !== 'json' && type !== 'file';
}

/** Converts a column value read from PostgreSQL to its API form. */
export function fromColumnValue(type: RecordFieldType | 'system', value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value.toISOString();
  switch (type) {
    case 'multiselect':
      return typeof value === 'string' && value.length > 0 ? value.split(';') : [];
    case 'json':
    case 'file':
      return typeof value === 'string' ? (JSON.parse(value) as unknown) : value;
    default:
      return value;
  }
}
