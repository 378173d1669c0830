/**
 * JSON with object keys sorted at every level and undefined members left out: two values that
 * differ only in key order (jsonb does not keep it) compare equal. For change detection and
 * digests (bundle apply); the audit chain has its own canonical encoding.
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
