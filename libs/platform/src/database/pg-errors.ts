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
