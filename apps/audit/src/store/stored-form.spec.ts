import { randomBytes } from 'node:crypto';
import { encodeControlChars, keyedHash, redactSecrets } from '@custodian/platform';
import { canonicalJson } from '../chain/canonical-json';
import { storedCanonicalJson, storedString } from './stored-form';

const key = randomBytes(32);
/** The three walks the fused encoder replaces, composed as the store used to compose them. */
const reference = (value: unknown): string => canonicalJson(encodeControlChars(redactSecrets(value, key)));

/** Deterministic PRNG (mulberry32), so a failure names a reproducible case. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = [
  'a',
  'Z',
  '0',
  '_',
  '-',
  ' ',
  '"',
  '\\',
  'é',
  '😀',
  '\u0000',
  '\u001b',
  '\u007f',
  '\u0085',
  '\u202e',
  '\u2067',
  '\ud800',
  '\udc00',
  '\\u0000',
];
const KEYS = [
  'name',
  'password',
  'refreshToken',
  'api_key_id',
  'apiKey',
  'x',
  'b',
  'a',
  'Cookie',
  '\u0000',
  '\\u0000',
  'otp',
  'token_hint',
];

function randomValue(rand: () => number, depth: number): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const kind = Math.floor(rand() * (depth > 3 ? 5 : 8));
  switch (kind) {
    case 0:
      return null;
    case 1:
      return rand() < 0.5;
    case 2:
      return pick([0, -1, 1.5, 1e21, -0, 123456789]);
    case 3:
    case 4:
      return Array.from({ length: Math.floor(rand() * 6) }, () => pick(ALPHABET)).join('');
    case 5:
      return Array.from({ length: Math.floor(rand() * 4) }, () => (rand() < 0.1 ? undefined : randomValue(rand, depth + 1)));
    default: {
      const out: Record<string, unknown> = {};
      for (let i = Math.floor(rand() * 5); i > 0; i--) out[pick(KEYS)] = rand() < 0.1 ? undefined : randomValue(rand, depth + 1);
      return out;
    }
  }
}

describe('storedCanonicalJson (redaction, visible control characters and canonical JSON in one walk)', () => {
  it.each([
    ['a plain event', { id: 'e1', action: 'objects.record.updated', details: { changes: { name: { from: 'a', to: 'b' } } } }],
    ['secrets at any depth, of any type', { details: { password: 'hunter2', nested: { apiKey: { a: 1 }, token: 42, cookie: null } } }],
    ['an already keyed hash is kept', { details: { password: keyedHash('x', key) } }],
    ['unsafe characters in keys and values', { 'k\u0000': 'line\nbreak\u202e', list: ['\ud800', '\udc00x', 'ok😀'] }],
    ['keys that collide once encoded (the later wins)', { '\u0000': 1, '\\u0000': 2 }],
    ['a later colliding undefined drops the key', { '\u0000': 1, '\\u0000': undefined }],
    ['undefined members and array holes', { a: undefined, b: [undefined, 1], c: { d: undefined } }],
    ['sort order by UTF-16 code units', { b: 1, a: 2, B: 3, é: 4, '😀': 5, '\uffff': 6 }],
    ['a secret key whose value is undefined', { password: undefined, token: 'x' }],
  ])('%s equals the three walks composed', (_name, value) => {
    expect(storedCanonicalJson(value, key)).toBe(reference(value));
  });

  it('equals the three walks composed on 3,000 generated values', () => {
    const rand = prng(20261122);
    for (let i = 0; i < 3000; i++) {
      const value = randomValue(rand, 0);
      const expected = reference(value);
      if (storedCanonicalJson(value, key) !== expected) throw new Error(`case ${i} differs: ${JSON.stringify(value)}`);
    }
  });

  it('never stores a secret in clear', () => {
    const text = storedCanonicalJson({ details: { password: 'hunter2', privateKey: 'PEM' } }, key);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('PEM');
  });

  it('refuses what canonical JSON cannot encode', () => {
    expect(() => storedCanonicalJson({ n: Number.NaN }, key)).toThrow(/non-finite/);
    expect(() => storedCanonicalJson({ n: BigInt(1) }, key)).toThrow(/bigint/);
  });

  it('storedString encodes a column value like a string inside the event', () => {
    expect(storedString('acc\u0000ount')).toBe('acc\\u0000ount');
    expect(storedString('plain')).toBe('plain');
    expect(storedString(undefined)).toBeNull();
  });
});
