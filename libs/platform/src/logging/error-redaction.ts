import pino from 'pino';

/**
 * The error serializer of every logger: pino's own, then the values of records taken out. A failed
 * query carries its SQL parameters (TypeORM's QueryFailedError.parameters) and PostgreSQL quotes
 * key values and whole failing rows in its error detail; logs keep the SQL text, the error code,
 * the parameter count and types, and the column names, which is what diagnosing needs.
 */
export function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  return redactValues(pino.stdSerializers.err(err), 0);
}

function redactValues(value: unknown, depth: number): unknown {
  if (depth > 6 || typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((v) => redactValues(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (key === 'parameters' && Array.isArray(v)) out[key] = `[${v.length} redacted${v.length ? `: ${v.map(typeName).join(', ')}` : ''}]`;
    else if (key === 'detail' && typeof v === 'string') out[key] = redactDetail(v);
    else if (v instanceof Error) out[key] = redactValues(pino.stdSerializers.err(v), depth + 1);
    else out[key] = redactValues(v, depth + 1);
  }
  return out;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (Buffer.isBuffer(v)) return 'bytes';
  if (v instanceof Date) return 'date';
  return typeof v;
}

/** `Key (email)=(a@b.c) already exists.` keeps the column names; `Failing row contains (…)` loses the row. */
export function redactDetail(detail: string): string {
  return detail
    .replace(/\)=\((.*?)\)( already exists| is not present| conflicts)/g, ')=([redacted])$2')
    .replace(/Failing row contains \(.*\)/s, 'Failing row contains ([redacted])');
}
