import { ErrorCode } from '@custodian/contracts';
import { CustodianException } from '../errors/custodian.exception';
import { assertSafeJson } from './forbidden-keys';

// QUALITY O6 and O8: prototype-pollution keys anywhere → 400 with a path; deep nesting → 400, fast,
// without blowing the stack; Object.prototype stays intact.

const prototypeKeysBefore = Object.getOwnPropertyNames(Object.prototype).sort();

function rejection(value: unknown, opts?: { maxDepth?: number }): CustodianException {
  try {
    assertSafeJson(value, opts);
  } catch (error) {
    expect(error).toBeInstanceOf(CustodianException);
    return error as CustodianException;
  }
  throw new Error('expected assertSafeJson to throw');
}

/** depth levels of `{"a": …}` or `[…]`, built as text so neither building nor parsing recurses here. */
function deepJson(depth: number, kind: 'object' | 'array'): unknown {
  const text = kind === 'object' ? '{"a":'.repeat(depth) + '1' + '}'.repeat(depth) : '['.repeat(depth) + '1' + ']'.repeat(depth);
  return JSON.parse(text);
}

function deepValue(depth: number, kind: 'object' | 'array'): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = kind === 'object' ? { a: value } : [value];
  return value;
}

describe('assertSafeJson', () => {
  it.each([
    ['__proto__ at top level', '{"__proto__":{"x":1}}', '$'],
    ['constructor at top level', '{"constructor":{"prototype":{"x":1}}}', '$'],
    ['prototype at top level', '{"prototype":{"x":1}}', '$'],
    ['__proto__ nested in an object', '{"a":{"b":{"__proto__":{"x":1}}}}', '$.a.b'],
    ['constructor nested in an object', '{"filter":{"constructor":{"x":1}}}', '$.filter'],
    ['prototype nested in an object', '{"a":{"prototype":1}}', '$.a'],
    ['__proto__ inside an array', '[1,{"ok":true},{"__proto__":{"x":1}}]', '$[2]'],
    ['constructor inside an array in an object', '{"items":[{"y":1},{"constructor":1}]}', '$.items[1]'],
    ['prototype deep in arrays', '{"a":[[[{"prototype":{}}]]]}', '$.a[0][0][0]'],
  ])('rejects %s with forbidden_key and its path', (_what, text, path) => {
    const value: unknown = JSON.parse(text);
    const error = rejection(value);
    expect(error.code).toBe(ErrorCode.ForbiddenKey);
    expect(error.details).toEqual({ path });
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('rejects a forbidden key even when its value is null or a primitive', () => {
    expect(rejection(JSON.parse('{"a":{"__proto__":null}}')).code).toBe(ErrorCode.ForbiddenKey);
    expect(rejection({ constructor: 'x' }).code).toBe(ErrorCode.ForbiddenKey);
  });

  it.each([['object'], ['array']] as const)('rejects %s nesting of depth 1,000 with bad_request (parsed input)', (kind) => {
    const error = rejection(deepJson(1000, kind));
    expect(error.code).toBe(ErrorCode.BadRequest);
    expect(error.details).toEqual({ path: expect.stringMatching(/^\$/) });
  });

  it('rejects depth 100,000 without a stack overflow', () => {
    expect(rejection(deepValue(100_000, 'array')).code).toBe(ErrorCode.BadRequest);
    expect(rejection(deepValue(100_000, 'object')).code).toBe(ErrorCode.BadRequest);
  });

  it('honours maxDepth exactly', () => {
    expect(() => assertSafeJson(deepValue(64, 'object'))).not.toThrow();
    expect(rejection(deepValue(66, 'object')).code).toBe(ErrorCode.BadRequest);
    expect(() => assertSafeJson(deepValue(3, 'array'), { maxDepth: 3 })).not.toThrow();
    expect(rejection(deepValue(5, 'array'), { maxDepth: 3 }).code).toBe(ErrorCode.BadRequest);
  });

  it('passes normal JSON, including keys that merely contain the forbidden words', () => {
    const value: unknown = JSON.parse(
      JSON.stringify({
        name: 'Acme',
        tags: ['a', 'b', { nested: [1, 2, null, true, 'x'] }],
        constructorName: 'Bob',
        proto: 1,
        __proto: 2,
        prototypes: [],
        'my.constructor': 3,
        amount: 12.5,
        empty: {},
      }),
    );
    expect(() => assertSafeJson(value)).not.toThrow();
    for (const scalar of [null, 1, 'text', true, [], {}]) expect(() => assertSafeJson(scalar)).not.toThrow();
  });

  // Runs last (tests in a file run in order): after every hostile input above, nothing leaked.
  it('leaves Object.prototype intact', () => {
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeKeysBefore);
  });
});
