import { types, type CustomTypesConfig } from 'pg';

/** PostgreSQL's type OID of timestamptz. */
const TIMESTAMPTZ_OID = 1184;

/** timestamptz as a UTC session writes it: a four-digit year from 1000, seconds, up to six fractional digits, `+00`. */
const UTC_TIMESTAMPTZ = /^([1-9]\d{3})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?\+00$/;

const defaultTimestamptz = types.getTypeParser(TIMESTAMPTZ_OID, 'text') as (text: string) => unknown;

/**
 * A timestamptz read as text, in the form the API answers it: what the driver's parser and
 * `toISOString()` make of it (fromColumnValue), without a Date in between. Only the UTC form
 * above is written out here — the same fields, the milliseconds computed as the driver computes
 * them (the fraction × 1000, truncated); anything else (another session time zone, BC, a year
 * before 1000, infinity) goes through the driver's parser as before.
 */
export function timestamptzToApi(text: string): unknown {
  const m = UTC_TIMESTAMPTZ.exec(text);
  if (!m) return defaultTimestamptz(text);
  const ms = m[7] ? Math.trunc(1000 * parseFloat(m[7])) : 0;
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
}

/**
 * The driver's type parsers for a list statement, but timestamptz columns arrive already in
 * their API form (timestamptzToApi): the page converter passes strings through, so a page
 * answers what it answered with Dates, and the rows skip a Date per timestamp.
 */
export const LIST_ROW_TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === TIMESTAMPTZ_OID && format !== 'binary'
      ? timestamptzToApi
      : types.getTypeParser(oid, format ?? 'text')) as CustomTypesConfig['getTypeParser'],
} satisfies CustomTypesConfig;
