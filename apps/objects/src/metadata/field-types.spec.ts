import { FieldValueError, columnValueIsApiValue, fromColumnValue, toColumnValue } from './field-types';
import { RECORD_FIELD_TYPES, type FieldDefinition } from './object-definition.schema';

const f = (over: Partial<FieldDefinition> & Pick<FieldDefinition, 'type'>): FieldDefinition => ({ name: 'x', ...over });

describe('field values', () => {
  it.each<[FieldDefinition, unknown, unknown]>([
    [f({ type: 'text' }), 'hello', 'hello'],
    [f({ type: 'number' }), 1.5, 1.5],
    [f({ type: 'boolean' }), false, false],
    [f({ type: 'date' }), '2026-02-28', '2026-02-28'],
    [f({ type: 'datetime' }), '2026-02-28T10:00:00+01:00', '2026-02-28T09:00:00.000Z'],
    [f({ type: 'select', options: ['a', 'b'] }), 'b', 'b'],
    [f({ type: 'multiselect', options: ['a', 'b'] }), ['b', 'a', 'b'], 'b;a'],
    [f({ type: 'json' }), { a: [1] }, '{"a":[1]}'],
    [f({ type: 'email' }), 'a@b.co', 'a@b.co'],
    [f({ type: 'url' }), 'https://x.test/a', 'https://x.test/a'],
    [f({ type: 'lookup', reference: 'o' }), '0190a5c4-0000-7000-8000-000000000000', '0190a5c4-0000-7000-8000-000000000000'],
    [f({ type: 'text' }), null, null],
  ])('accepts %j ← %j', (field, value, stored) => {
    expect(toColumnValue(field, value)).toEqual(stored);
  });

  it.each<[FieldDefinition, unknown]>([
    [f({ type: 'text', maxLength: 3 }), 'long'],
    [f({ type: 'text' }), 'a\u0000b'],
    [f({ type: 'text' }), 5],
    [f({ type: 'number' }), Number.NaN],
    [f({ type: 'number' }), '1'],
    [f({ type: 'date' }), '2026-02-30'],
    [f({ type: 'datetime' }), 'yesterday'],
    [f({ type: 'select', options: ['a'] }), 'c'],
    [f({ type: 'multiselect', options: ['a'] }), 'a'],
    [f({ type: 'email' }), 'nope'],
    [f({ type: 'url' }), 'javascript:alert(1)'],
    [f({ type: 'lookup', reference: 'o' }), "1' OR '1'='1"],
    [f({ type: 'text', required: true }), null],
  ])('refuses %j ← %j', (field, value) => {
    expect(() => toColumnValue(field, value)).toThrow(FieldValueError);
  });

  it('answers multiselect as arrays and JSON as values', () => {
    expect(fromColumnValue('multiselect', 'a;b')).toEqual(['a', 'b']);
    expect(fromColumnValue('multiselect', '')).toEqual([]);
    expect(fromColumnValue('json', '{"a":1}')).toEqual({ a: 1 });
    expect(fromColumnValue('system', new Date('2026-01-01T00:00:00Z'))).toBe('2026-01-01T00:00:00.000Z');
  });

  it.each([...RECORD_FIELD_TYPES, 'system' as const])(
    '%s: columnValueIsApiValue says whether fromColumnValue keeps a column value',
    (type) => {
      // A text that multiselect splits and JSON parses, and plain values.
      const values = ['"a;b"', 42, true];
      const kept = values.every((v) => fromColumnValue(type, v) === v);
      expect(columnValueIsApiValue(type)).toBe(kept);
    },
  );
});
