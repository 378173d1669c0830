// C0 controls, DEL, C1 controls, bidi overrides/isolates and lone surrogates: what can forge a
// log line, hide text in a terminal, or that PostgreSQL's jsonb refuses (\u0000).
const UNSAFE =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * Returns a copy of `value` in which every unsafe character of every string (keys included) is
 * written as the six visible characters `\uXXXX`, so a stored name shows what was sent without
 * acting on a terminal or a log viewer. A literal backslash-u sequence is left as sent: the
 * stored form is for reading, the row hash covers exactly what was stored.
 */
export function encodeControlChars<T>(value: T): T {
  return encode(value) as T;
}

function encode(value: unknown): unknown {
  if (typeof value === 'string') return encodeString(value);
  if (Array.isArray(value)) return value.map(encode);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[encodeString(k)] = encode(v);
    return out;
  }
  return value;
}

/** `s` with every unsafe character written as the six characters `\uXXXX`. */
export function encodeString(s: string): string {
  return s.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const UNSAFE_ANY = new RegExp(UNSAFE.source);

/** Whether `s` holds any character encodeString would rewrite (most strings hold none). */
export function hasUnsafeChars(s: string): boolean {
  return UNSAFE_ANY.test(s);
}
