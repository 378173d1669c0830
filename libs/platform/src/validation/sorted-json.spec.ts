import { sortedJson } from './sorted-json';

describe('sortedJson', () => {
  it('is the same for values that differ only in key order, at any depth, and drops undefined members', () => {
    const a = { b: 1, a: { y: [1, { d: 2, c: 3 }], x: 'x' }, u: undefined };
    const b = { a: { x: 'x', y: [1, { c: 3, d: 2 }] }, b: 1 };
    expect(sortedJson(a)).toBe(sortedJson(b));
    expect(sortedJson(a)).toBe('{"a":{"x":"x","y":[1,{"c":3,"d":2}]},"b":1}');
  });

  it('tells different values apart (array order, types, nulls)', () => {
    expect(sortedJson([1, 2])).not.toBe(sortedJson([2, 1]));
    expect(sortedJson({ a: 1 })).not.toBe(sortedJson({ a: '1' }));
    expect(sortedJson({ a: null })).not.toBe(sortedJson({}));
  });
});
