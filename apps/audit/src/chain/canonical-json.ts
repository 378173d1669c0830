/**
 * The canonical encoding every row hash is computed over (docs/audit.md, "Canonical encoding"):
 * JSON with object keys sorted by UTF-16 code units (RFC 8785 order), no whitespace, strings and
 * numbers as ECMAScript JSON.stringify writes them, `undefined` members dropped. Non-finite
 * numbers, bigints and functions are refused, so two encoders can never disagree silently.
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
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON has no encoding for ${typeof value}`);
  }
}
