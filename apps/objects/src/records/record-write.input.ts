import { PolicyError, isSystemField, type Decision } from '@custodian/policy';
import { storageKey } from '../files/file-storage';
import { FieldValueError, toColumnValue } from '../metadata/field-types';
import type { FieldDefinition, StoredObjectDefinition } from '../metadata/object-definition.schema';
import { bad } from './record-query';
import { UUID, type Row } from './record-rows';

/** The pure part of a record write (record-write.service.ts): body checks, column values, diffs. */

const MAX_WRITE_FIELDS = 200;

export type FieldDiff = Record<string, { from: unknown; to: unknown }>;

/** The part of a write's field diff the caller may read (R5). */
export function readableDiff(decision: Decision, object: string, diff: FieldDiff): FieldDiff {
  const readable = new Set(decision.readableFields(object));
  return Object.fromEntries(Object.entries(diff).filter(([k]) => readable.has(k)));
}

/** O3 before R5: system and unknown fields are 400 (nothing written); then fields below edit are 403. */
export function checkBody(decision: Decision, def: StoredObjectDefinition, body: unknown, action: 'create' | 'edit'): Row {
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
export function columnValues(def: StoredObjectDefinition, input: Row, action: 'create' | 'edit'): Row {
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

/** Storage keys of the files a record's file fields name (see apps/objects/src/files). */
export function fileKeysOf(orgId: string, def: StoredObjectDefinition, row: Row): string[] {
  const keys: string[] = [];
  for (const f of def.fields) {
    if (f.type !== 'file' || typeof row[f.name] !== 'string') continue;
    const fileId = (JSON.parse(row[f.name] as string) as { id?: unknown }).id;
    if (typeof fileId === 'string' && UUID.test(fileId))
      keys.push(storageKey({ orgId, object: def.name, recordId: String(row.id), field: f.name, fileId }));
  }
  return keys;
}
