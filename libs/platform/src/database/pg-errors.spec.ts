import { QueryFailedError } from 'typeorm';
import {
  PgCode,
  isForeignKeyViolation,
  isRetryableTransactionError,
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
});
