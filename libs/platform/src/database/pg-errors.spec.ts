import { QueryFailedError } from 'typeorm';
import {
  PgCode,
  isDataOrIntegrityError,
  isForeignKeyViolation,
  isInvalidValueError,
  isRetryableTransactionError,
  isTransientDatabaseError,
  isSerializationFailure,
  isUndefinedTableOrColumn,
  isUniqueViolation,
  pgCode,
} from './pg-errors';

const pgError = (code: string): Error => Object.assign(new Error(`pg ${code}`), { code });
const typeormError = (code: string): QueryFailedError => new QueryFailedError('SELECT 1', [], pgError(code));

describe('PostgreSQL error helper', () => {
  it('reads the code of a raw pg error and of a TypeORM QueryFailedError', () => {
    expect(pgCode(pgError('23505'))).toBe('23505');
    expect(pgCode(typeormError('40001'))).toBe('40001');
    expect(pgCode({ driverError: { code: '40P01' } })).toBe('40P01');
  });

  it('prefers the driver error code when both are present', () => {
    expect(pgCode({ code: 'X', driverError: { code: '23503' } })).toBe('23503');
  });

  it('answers undefined for values without a string code', () => {
    for (const v of [undefined, null, 'text', 42, new Error('plain'), { code: 23505 }, { driverError: {} }])
      expect(pgCode(v)).toBeUndefined();
  });

  it('classifies each code, through either shape', () => {
    for (const make of [pgError, typeormError]) {
      expect(isUniqueViolation(make(PgCode.UniqueViolation))).toBe(true);
      expect(isUniqueViolation(make(PgCode.ForeignKeyViolation))).toBe(false);
      expect(isForeignKeyViolation(make('23503'))).toBe(true);
      expect(isForeignKeyViolation(make('23505'))).toBe(false);
      expect(isSerializationFailure(make('40001'))).toBe(true);
      expect(isSerializationFailure(make('40P01'))).toBe(false);
      expect(isRetryableTransactionError(make('40001'))).toBe(true);
      expect(isRetryableTransactionError(make('40P01'))).toBe(true);
      expect(isRetryableTransactionError(make('23505'))).toBe(false);
      expect(isUndefinedTableOrColumn(make('42P01'))).toBe(true);
      expect(isUndefinedTableOrColumn(make('42703'))).toBe(true);
      expect(isUndefinedTableOrColumn(make('42501'))).toBe(false);
    }
  });

  it('never throws on odd input', () => {
    expect(isUniqueViolation(undefined)).toBe(false);
    expect(isRetryableTransactionError(null)).toBe(false);
  });

  it('calls a down, overloaded or refusing database transient, and nothing the request got wrong', () => {
    for (const make of [pgError, typeormError]) {
      for (const code of ['08006', '08001', '53300', '57P01', '40001', '40P01', '42501'])
        expect(isTransientDatabaseError(make(code))).toBe(true);
      for (const code of ['23505', '22P02', '42P01', '42601', 'XX000']) expect(isTransientDatabaseError(make(code))).toBe(false);
    }
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT']) expect(isTransientDatabaseError(pgError(code))).toBe(true);
    expect(isTransientDatabaseError(new Error('timeout exceeded when trying to connect'))).toBe(true);
    expect(isTransientDatabaseError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isTransientDatabaseError(new Error('syntax error'))).toBe(false);
    expect(isTransientDatabaseError('Connection terminated')).toBe(false);
  });

  it('calls a value PostgreSQL could not read an invalid value, and only that', () => {
    for (const make of [pgError, typeormError]) {
      for (const code of ['22P02', '22003', '22007', '22008', '22021', '22P05']) expect(isInvalidValueError(make(code))).toBe(true);
      for (const code of ['22001', '23505', '40001', '08006']) expect(isInvalidValueError(make(code))).toBe(false);
    }
    expect(isInvalidValueError({ code: 22 })).toBe(false);
  });

  it('calls every data exception (22) and integrity violation (23) a refusal of the data', () => {
    for (const make of [pgError, typeormError]) {
      for (const code of ['22001', '22P02', '23505', '23503', '23514']) expect(isDataOrIntegrityError(make(code))).toBe(true);
      for (const code of ['40001', '42501', '08006', '2', '24000']) expect(isDataOrIntegrityError(make(code))).toBe(false);
    }
    expect(isDataOrIntegrityError(undefined)).toBe(false);
  });
});
