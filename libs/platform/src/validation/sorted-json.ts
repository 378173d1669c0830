/**
 * JSON with object keys sorted at every level and undefined members left out. On JSON data it is
 * byte for byte `canonicalJson` (RFC 8785; property test in canonical-json.spec.ts), which every
 * other comparison and hash uses. It remains only where a value may come from a YAML bundle
 * document before it was ever stored (the bundle digest, the objects service's bundle and action
 * comparisons) and in the denial auditor's in-memory grouping key (event details built by code, not
 * proven JSON data). YAML's `.nan`/`.inf` pass the bundle schema's `unknown` slots; this writes them
 * as `null` (as JSON and jsonb carry them) where `canonicalJson` refuses them, so switching would
 * turn such a bundle into a 500.
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
