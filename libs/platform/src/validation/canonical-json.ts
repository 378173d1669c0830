import { createHash } from 'node:crypto';

/**
 * The one canonical JSON encoding (RFC 8785, JSON Canonicalization Scheme): object keys sorted by
 * UTF-16 code units, no whitespace, strings and numbers as ECMAScript JSON.stringify writes them
 * (which is what RFC 8785 §3.2.2 prescribes: 1e21 → `1e+21`, -0 → `0`), `undefined` members dropped
 * and `undefined` array items written as `null` (as JSON.stringify does). Non-finite numbers,
 * bigints, functions and symbols are refused, so two encoders can never disagree silently.
 *
 * Input is JSON data (what JSON.parse or jsonb gives back): objects are encoded by their own
 * enumerable keys, `toJSON` is not consulted. The audit chain's row hashes (docs/audit.md,
 * "Canonical encoding") and the idempotency request hashes are computed over this encoding; this
 * is byte for byte the audit chain's earlier encoder (property test in canonical-json.spec.ts), so
 * stored hashes still verify.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonical JSON has no encoding for a non-finite number');
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
      const obj = value as Record<string, unknown>;
      // Array.prototype.sort without a comparator orders by UTF-16 code units (RFC 8785 §3.2.3).
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON has no encoding for ${typeof value}`);
  }
}

/**
 * A short content hash of a value (sha256 of its canonical JSON, 32 hex digits): a version for data
 * that has no version column, so a change computed on it can tell when it moved since. Byte for byte
 * the hash it was before over the earlier sorted-keys encoder (canonical-json.spec.ts), so versions handed out still match.
 */
export function contentHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 32);
}
