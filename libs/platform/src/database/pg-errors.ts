/**
 * One place that reads PostgreSQL error codes (SQLSTATE, https://www.postgresql.org/docs/current/errcodes-appendix.html).
 * TypeORM's QueryFailedError copies the driver's fields onto itself and keeps the driver error as
 * `driverError`; a raw `pg` error carries `code` only. `pgCode` reads either.
 */
export const PgCode = {
  UniqueViolation: '23505',
  ForeignKeyViolation: '23503',
  SerializationFailure: '40001',
  DeadlockDetected: '40P01',
  UndefinedTable: '42P01',
  UndefinedColumn: '42703',
} as const;

/** The SQLSTATE of a database error (the driver error's code first), or undefined. */
export function pgCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const driver = (error as { driverError?: { code?: unknown } }).driverError?.code;
  if (typeof driver === 'string') return driver;
  const own = (error as { code?: unknown }).code;
  return typeof own === 'string' ? own : undefined;
}

/** A unique key already holds this value (23505). */
export function isUniqueViolation(error: unknown): boolean {
  return pgCode(error) === PgCode.UniqueViolation;
}

/** A referenced row does not exist, or a referencing row still does (23503). */
export function isForeignKeyViolation(error: unknown): boolean {
  return pgCode(error) === PgCode.ForeignKeyViolation;
}

/** The transaction lost a serialization race (40001). */
export function isSerializationFailure(error: unknown): boolean {
  return pgCode(error) === PgCode.SerializationFailure;
}

/** A transaction that failed only because of a concurrent one and is safe to run again: 40001, 40P01 (F6). */
export function isRetryableTransactionError(error: unknown): boolean {
  const code = pgCode(error);
  return code === PgCode.SerializationFailure || code === PgCode.DeadlockDetected;
}

/** A table or column named by the statement does not exist (42P01, 42703). */
export function isUndefinedTableOrColumn(error: unknown): boolean {
  const code = pgCode(error);
  return code === PgCode.UndefinedTable || code === PgCode.UndefinedColumn;
}

/**
 * SQLSTATEs that mean "not now" rather than "your request is wrong": connection exceptions (class
 * 08), insufficient resources (53), operator intervention such as an admin shutdown (57P), a lost
 * serialization race or deadlock (40001, 40P01), and a refused privilege (42501 — e.g. the audit
 * outbox cannot be written).
 */
const TRANSIENT_CODE = /^(08|53|57P|40001|40P01|42501)/;
/** Socket errors of the driver before PostgreSQL answers at all. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT']);
// pg's pool answers "timeout exceeded when trying to connect" when no connection frees up in time.
const UNREACHABLE_MESSAGE = /Connection terminated|connection timeout|timeout exceeded when trying to connect/i;

/** The database is down, overloaded, refused us or asked for a retry: worth a 503, never a 500. */
export function isTransientDatabaseError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = pgCode(error);
  if (code !== undefined && (TRANSIENT_CODE.test(code) || UNREACHABLE_CODES.has(code))) return true;
  return UNREACHABLE_MESSAGE.test(String((error as { message?: unknown }).message));
}

/**
 * SQLSTATEs of a value the database could not take: invalid text representation (22P02), numeric
 * out of range (22003), invalid or out-of-range date-time (22007, 22008), bytes not valid in the
 * encoding (22021, 22P05).
 */
const INVALID_VALUE_CODES: ReadonlySet<string> = new Set(['22P02', '22003', '22007', '22008', '22021', '22P05']);

/** PostgreSQL could not read a value as its column's type: "your value is wrong", never "the service is broken". */
export function isInvalidValueError(error: unknown): boolean {
  const code = pgCode(error);
  return code !== undefined && INVALID_VALUE_CODES.has(code);
}

/** PostgreSQL refused the data itself (class 22 data exception, class 23 integrity violation): running it again cannot help. */
export function isDataOrIntegrityError(error: unknown): boolean {
  const code = pgCode(error);
  return code !== undefined && /^2[23]/.test(code);
}
