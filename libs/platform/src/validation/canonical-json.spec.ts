import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { canonicalJson, contentHash } from './canonical-json';

/**
 * The objects service's comparison encoder before `canonicalJson` replaced it (libs/platform's
 * sorted-json.ts), verbatim: the oracle that shows bundle digests and content hashes handed out
 * before keep their values.
 */
function sortedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${sortedJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

/** The audit chain's encoder before it moved here (apps/audit/src/chain/canonical-json.ts), verbatim: the oracle. */
function auditEncoderBefore(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonical JSON has no encoding for a non-finite number');
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : auditEncoderBefore(v))).join(',')}]`;
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${auditEncoderBefore(obj[k])}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON has no encoding for ${typeof value}`);
  }
}

/** JSON values with full Unicode strings (astral code points included), edge numbers and deep nesting. */
const edgeNumbers = fc.constantFrom(
  1e21,
  1e-7,
  -0,
  0,
  5e-324,
  Number.MAX_SAFE_INTEGER,
  Number.MAX_VALUE,
  -1e-27,
  333333333.3333333,
  0.1 + 0.2,
);
const json: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { maxDepth: 5, depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.integer(),
    edgeNumbers,
    fc.string({ unit: 'binary' }),
    fc.string({ unit: 'grapheme' }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string({ unit: 'binary', maxLength: 6 }), tie('value'), { maxKeys: 6 }),
  ),
})).value;

describe('canonical JSON (RFC 8785)', () => {
  it('writes the RFC 8785 example (appendix/§3.2.4) byte for byte', () => {
    const input = JSON.parse(
      '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}',
    );
    expect(canonicalJson(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('sorts keys by UTF-16 code units (RFC 8785 §3.2.3 example)', () => {
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    // JSON.parse would put the integer-like key first: read the written order.
    const written = [...canonicalJson(input).matchAll(/"((?:[^"\\]|\\.)*)":"/g)].map((m) => JSON.parse(`"${m[1]}"`) as string);
    expect(written).toEqual(['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33']);
  });

  it('writes the numbers RFC 8785 names as ECMAScript does', () => {
    expect([1e21, 1e-7, -0, 0.000001, 1e30, 4.5, 2e-3, 1e-27].map(canonicalJson)).toEqual([
      '1e+21',
      '1e-7',
      '0',
      '0.000001',
      '1e+30',
      '4.5',
      '0.002',
      '1e-27',
    ]);
  });

  it('refuses what JSON cannot carry', () => {
    for (const v of [NaN, Infinity, -Infinity, 1n, () => 1, Symbol('s'), undefined]) expect(() => canonicalJson(v)).toThrow(TypeError);
  });

  it('drops undefined members and writes undefined array items as null', () => {
    expect(canonicalJson({ b: 1, a: undefined, c: [undefined, 2] })).toBe('{"b":1,"c":[null,2]}');
  });

  it('is byte for byte the audit chain encoder it replaced, so stored row hashes still verify (property, fixed seed)', () => {
    fc.assert(
      fc.property(json, (v) => canonicalJson(v) === auditEncoderBefore(v)),
      { seed: 8785, numRuns: 2000 },
    );
  });

  it('is byte for byte sortedJson on JSON data, so stored idempotency request hashes still match (property, fixed seed)', () => {
    fc.assert(
      fc.property(json, (v) => canonicalJson(v) === sortedJson(v)),
      { seed: 8785, numRuns: 2000 },
    );
    // Parsed request bodies are what those hashes cover: the same again through JSON.parse.
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const parsed = JSON.parse(JSON.stringify(v)) as unknown;
        return canonicalJson(parsed) === sortedJson(parsed);
      }),
      { seed: 8785, numRuns: 1000 },
    );
  });

  it('equals sortedJson also with undefined members (dropped by both), and so contentHash keeps its values (property, fixed seed)', () => {
    const withUndefined: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
      value: fc.oneof(
        { maxDepth: 4, depthSize: 'small' },
        json,
        fc.array(tie('value'), { maxLength: 4 }),
        fc.dictionary(fc.string({ unit: 'binary', maxLength: 6 }), fc.oneof(tie('value'), fc.constant(undefined)), { maxKeys: 6 }),
      ),
    })).value;
    const hashBefore = (v: unknown): string => createHash('sha256').update(sortedJson(v)).digest('hex').slice(0, 32);
    fc.assert(
      fc.property(withUndefined, (v) => canonicalJson(v) === sortedJson(v) && contentHash(v) === hashBefore(v)),
      { seed: 8785, numRuns: 2000 },
    );
    for (const v of [
      { a: 1e21, b: -0, c: 0.1, '\u00e9\ud83d\ude00': [[[]], [{}]] },
      { def: { x: 1 }, sharingRules: undefined },
    ])
      expect(canonicalJson(v)).toBe(sortedJson(v));
  });

  it('differs from sortedJson only where it refuses: non-finite numbers (a bundle refuses them first), undefined items, functions', () => {
    expect(sortedJson({ n: NaN, i: [Infinity] })).toBe('{"i":[null],"n":null}');
    for (const v of [{ n: NaN }, [Infinity], [-Infinity], { f: () => 1 }, undefined]) expect(() => canonicalJson(v)).toThrow(TypeError);
    expect([sortedJson([undefined]), canonicalJson([undefined])]).toEqual(['[]', '[null]']);
  });

  it('round-trips: parsing the encoding gives the value back (modulo -0)', () => {
    fc.assert(
      fc.property(json, (v) => {
        expect(JSON.parse(canonicalJson(v))).toEqual(JSON.parse(JSON.stringify(v)));
      }),
      { seed: 8785, numRuns: 500 },
    );
  });
});
