import { createHash } from 'node:crypto';

/**
 * JSON with object keys sorted at every level and undefined members left out: two values that
 * differ only in key order (jsonb does not keep it) compare equal. For change detection and
 * digests (bundle apply). On JSON data it is byte for byte `canonicalJson` (RFC 8785, property
 * test in canonical-json.spec.ts); it differs only on non-JSON input (NaN and Infinity become
 * `null` here, refused there). Hashes that are stored use `canonicalJson`.
 */
export function sortedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${sortedJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

/**
 * A short content hash of a value (sha256 of its sorted JSON, 32 hex digits): a version for data
 * that has no version column, so a change computed on it can tell when it moved since.
 */
export function contentHash(value: unknown): string {
  return createHash('sha256').update(sortedJson(value)).digest('hex').slice(0, 32);
}
