import type { Readable } from 'node:stream';

/** Nest token of the configured FileStorage. */
export const FILE_STORAGE = Symbol('FILE_STORAGE');

/** A key segment: org and record ids, object and field names, the file's own uuid — never user text. */
const SEGMENT = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/**
 * The storage key of one stored file: `<org>/<object>/<record>/<field>/<file id>`. Built only from
 * server-side values that are checked here again, so no caller input can steer it elsewhere.
 */
export function storageKey(parts: { orgId: string; object: string; recordId: string; field: string; fileId: string }): string {
  const segments = [parts.orgId, parts.object, parts.recordId, parts.field, parts.fileId];
  for (const s of segments) if (!SEGMENT.test(s)) throw new Error('invalid storage key segment');
  return segments.join('/');
}

export function isStorageKey(key: string): boolean {
  const segments = key.split('/');
  return segments.length === 5 && segments.every((s) => SEGMENT.test(s));
}

export interface PutOptions {
  /** Exact byte count of `body` (the upload's Content-Length). */
  size: number;
  contentType: string;
}

/** Where file content lives: local disk or an S3-compatible bucket (docs/files.md). */
export interface FileStorage {
  readonly kind: 'local' | 's3';
  /** Stores `body` under `key`; when the body fails midway nothing is left under `key`. */
  put(key: string, body: Readable, opts: PutOptions): Promise<void>;
  /** The content, or undefined when nothing is stored under `key`. */
  get(key: string): Promise<Readable | undefined>;
  /** Removes `key`; removing a missing key is not an error. */
  delete(key: string): Promise<void>;
}
