import { KEYED_HASH_PREFIX, encodeString, hasUnsafeChars, isSecretKey, keyedHash } from '@custodian/platform';

/**
 * The stored, hashed text of an incoming event: the RFC 8785 encoding (`canonicalJson`, the one
 * canonical JSON encoder) specialised for stored events. In one walk over the event, every value
 * under a secret-looking key becomes a keyed hash (A5, `redactSecrets`) and every unsafe character
 * of every string and key is written visibly (`encodeControlChars`); stored-form.spec.ts proves it
 * equal to `canonicalJson(encodeControlChars(redactSecrets(event, key)))` (hand-picked cases and
 * 3,000 generated values). It exists for speed: the three walks and two copies of the event it
 * replaces were a fifth of the store's CPU per event (20,000 typical events in isolation: ~360 →
 * ~220 ms, docs/audit.md).
 */
export function storedCanonicalJson(event: unknown, hashKey: Buffer): string {
  return encode(event, hashKey, false);
}

/** A string column as it is stored: unsafe characters written visibly, like inside the event. */
export function storedString(s: string): string;
export function storedString(s: string | null | undefined): string | null;
export function storedString(s: string | null | undefined): string | null {
  if (s === null || s === undefined) return null;
  return hasUnsafeChars(s) ? encodeString(s) : s;
}

function encode(value: unknown, hashKey: Buffer, secret: boolean): string {
  if (value === null) return 'null';
  if (secret && value !== undefined) {
    const kept = typeof value === 'string' && value.startsWith(KEYED_HASH_PREFIX);
    const hashed = kept ? value : keyedHash(typeof value === 'string' ? value : JSON.stringify(value), hashKey);
    return JSON.stringify(storedString(hashed));
  }
  switch (typeof value) {
    case 'string':
      return JSON.stringify(hasUnsafeChars(value) ? encodeString(value) : value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonical JSON has no encoding for a non-finite number');
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          const v: unknown = value[i];
          out += (i ? ',' : '') + (v === undefined ? 'null' : encode(v, hashKey, false));
        }
        return `${out}]`;
      }
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj);
      if (keys.some(hasUnsafeChars)) return encodeUnsafeKeys(obj, keys, hashKey);
      keys.sort();
      let out = '{';
      for (const k of keys) {
        const v = obj[k];
        if (v === undefined) continue;
        out += `${out.length > 1 ? ',' : ''}${JSON.stringify(k)}:${encode(v, hashKey, isSecretKey(k))}`;
      }
      return `${out}}`;
    }
    default:
      throw new TypeError(`canonical JSON has no encoding for ${typeof value}`);
  }
}

/**
 * An object with keys that change when encoded: later keys that encode to the same visible key
 * replace earlier ones, as in a copy, and an undefined member is dropped after that, as JSON does.
 */
function encodeUnsafeKeys(obj: Record<string, unknown>, keys: string[], hashKey: Buffer): string {
  const members = new Map<string, { value: unknown; secret: boolean }>();
  for (const k of keys) members.set(storedString(k), { value: obj[k], secret: isSecretKey(k) });
  const visible = [...members.keys()].filter((k) => members.get(k)!.value !== undefined).sort();
  let out = '{';
  for (const k of visible) {
    const { value, secret } = members.get(k)!;
    out += `${out.length > 1 ? ',' : ''}${JSON.stringify(k)}:${encode(value, hashKey, secret)}`;
  }
  return `${out}}`;
}
