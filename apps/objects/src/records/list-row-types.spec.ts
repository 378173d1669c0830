import { types } from 'pg';
import { LIST_ROW_TYPES, timestamptzToApi } from './list-row-types';

const driver = types.getTypeParser(1184, 'text') as (text: string) => unknown;
/** What a page answered for a timestamptz before: the driver's value through fromColumnValue (a Date's ISO text). */
const before = (text: string): unknown => {
  const value = driver(text);
  return value instanceof Date ? value.toISOString() : value;
};
const after = (text: string): unknown => {
  const value = timestamptzToApi(text);
  return value instanceof Date ? value.toISOString() : value;
};

describe('timestamptz in a list page', () => {
  it.each([
    '2026-12-02 17:44:16.526123+00',
    '2026-12-02 17:44:16+00',
    '2026-12-02 17:44:16.1+00',
    '2026-12-02 17:44:16.145+00',
    '2026-12-02 17:44:16.000001+00',
    '2026-12-02 17:44:16.999999+00',
    '2024-02-29 23:59:59.5+00',
    '1000-01-01 00:00:00+00',
    '9999-12-31 23:59:59.999999+00',
    // Not the UTC form: through the driver's parser.
    '2026-12-02 17:44:16.5+05:30',
    '2026-12-02 17:44:16-08',
    '0099-01-01 00:00:00+00',
    '0001-01-01 00:00:00+00 BC',
    'infinity',
    '-infinity',
  ])('%s answers what the driver and toISOString answered', (text) => {
    expect(after(text)).toEqual(before(text));
  });

  it('every millisecond fraction (6 digits) answers alike', () => {
    const differing: string[] = [];
    for (let i = 0; i < 1_000_000; i += 97) {
      const text = `2026-03-04 05:06:07.${String(i).padStart(6, '0')}+00`;
      if (after(text) !== before(text)) differing.push(text);
    }
    expect(differing).toEqual([]);
  });

  it('only timestamptz in text form is read differently; every other type keeps the driver parser', () => {
    expect(LIST_ROW_TYPES.getTypeParser(1184, 'text')).toBe(timestamptzToApi);
    for (const oid of [16, 20, 23, 25, 700, 701, 1082, 1114, 1043, 2950, 3802, 1184])
      if (oid !== 1184) expect(LIST_ROW_TYPES.getTypeParser(oid, 'text')).toBe(types.getTypeParser(oid, 'text'));
    expect(LIST_ROW_TYPES.getTypeParser(1184, 'binary')).toBe(types.getTypeParser(1184, 'binary'));
  });
});
