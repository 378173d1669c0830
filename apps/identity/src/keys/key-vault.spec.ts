import { randomBytes } from 'node:crypto';
import { types } from 'node:util';
import { KeyVault } from './key-vault';

// AES-256-GCM envelope for signing keys at rest: any change to the sealed value, the AAD or the
// key must make open() fail with an Error, never return different plaintext.

const AAD = 'signing-key:key-2030-01';
const plaintext = Buffer.from('-----BEGIN PRIVATE KEY----- secret material');

/**
 * open() must throw an Error. Node's crypto errors come from the outer realm, so `instanceof Error`
 * (and jest's toThrow(Error)) cannot see them inside the test sandbox; isNativeError can.
 */
function expectOpenFails(open: () => Buffer): void {
  let thrown: unknown;
  let opened: Buffer | undefined;
  try {
    opened = open();
  } catch (error) {
    thrown = error;
  }
  if (opened) throw new Error(`expected open() to fail, it returned ${opened.length} bytes`);
  expect(types.isNativeError(thrown)).toBe(true);
}

function parts(sealed: string): string[] {
  return sealed.split('.');
}

function withPart(sealed: string, index: number, value: Buffer | string): string {
  const p = parts(sealed);
  p[index] = typeof value === 'string' ? value : value.toString('base64url');
  return p.join('.');
}

describe('KeyVault', () => {
  const master = randomBytes(32);
  const vault = new KeyVault(master);

  it('round-trips seal and open', () => {
    const sealed = vault.seal(plaintext, AAD);
    expect(sealed.startsWith(`v1.${KeyVault.keyId(master)}.`)).toBe(true);
    expect(sealed).not.toContain(plaintext.toString('base64url'));
    expect(vault.open(sealed, AAD).equals(plaintext)).toBe(true);
    expect(new KeyVault(Buffer.from(master)).open(sealed, AAD).equals(plaintext)).toBe(true);
  });

  it('round-trips an empty plaintext', () => {
    expect(vault.open(vault.seal(Buffer.alloc(0), AAD), AAD)).toHaveLength(0);
  });

  it('uses a fresh IV for every seal', () => {
    const a = parts(vault.seal(plaintext, AAD));
    const b = parts(vault.seal(plaintext, AAD));
    expect(a[2]).not.toBe(b[2]);
    expect(a[4]).not.toBe(b[4]);
  });

  it('fails with the wrong AAD', () => {
    const sealed = vault.seal(plaintext, AAD);
    for (const aad of ['signing-key:key-2030-02', '', `${AAD} `]) expectOpenFails(() => vault.open(sealed, aad));
  });

  it.each([
    ['iv', 2],
    ['tag', 3],
    ['data', 4],
  ])('fails when any byte of the %s is flipped', (_name, index) => {
    const sealed = vault.seal(plaintext, AAD);
    const original = Buffer.from(parts(sealed)[index], 'base64url');
    for (let i = 0; i < original.length; i++) {
      for (const mask of [0x01, 0x80]) {
        const flipped = Buffer.from(original);
        flipped[i] ^= mask;
        expectOpenFails(() => vault.open(withPart(sealed, index, flipped), AAD));
      }
    }
  });

  it('fails on a truncated authentication tag (no 4-byte GCM tags)', () => {
    const sealed = vault.seal(plaintext, AAD);
    const tag = Buffer.from(parts(sealed)[3], 'base64url');
    for (const length of [4, 8, 12, 13, 15]) {
      expectOpenFails(() => vault.open(withPart(sealed, 3, tag.subarray(0, length)), AAD));
    }
  });

  it('fails on truncated or extended data', () => {
    const sealed = vault.seal(plaintext, AAD);
    const data = Buffer.from(parts(sealed)[4], 'base64url');
    expectOpenFails(() => vault.open(withPart(sealed, 4, data.subarray(0, data.length - 1)), AAD));
    expectOpenFails(() => vault.open(withPart(sealed, 4, Buffer.concat([data, Buffer.from([0])])), AAD));
    expectOpenFails(() => vault.open(withPart(sealed, 4, ''), AAD));
  });

  it('opens a value sealed under an old master key only when that key is passed as previous', () => {
    const oldKey = randomBytes(32);
    const sealedOld = new KeyVault(oldKey).seal(plaintext, AAD);
    const newKey = randomBytes(32);

    expect(new KeyVault(newKey, [oldKey]).open(sealedOld, AAD).equals(plaintext)).toBe(true);
    expect(() => new KeyVault(newKey).open(sealedOld, AAD)).toThrow('sealed value cannot be opened with the configured master key');

    // New values are sealed under the current key, not the previous one.
    const rotated = new KeyVault(newKey, [oldKey]);
    expect(parts(rotated.seal(plaintext, AAD))[1]).toBe(KeyVault.keyId(newKey));
    expectOpenFails(() => new KeyVault(oldKey).open(rotated.seal(plaintext, AAD), AAD));
  });

  it('fails when the key id is swapped to another configured key', () => {
    const other = randomBytes(32);
    const both = new KeyVault(master, [other]);
    const sealed = both.seal(plaintext, AAD);
    expectOpenFails(() => both.open(withPart(sealed, 1, KeyVault.keyId(other)), AAD));
  });

  it.each([
    ['empty', ''],
    ['garbage', 'not a sealed value'],
    ['wrong version', 'v2.aaaaaaaaaaaa.aaaa.aaaa.aaaa'],
    ['missing parts', 'v1'],
    ['unknown key id', 'v1.000000000000.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA.AAAA'],
    ['empty iv', `v1.${KeyVault.keyId(master)}..AAAAAAAAAAAAAAAAAAAAAA.AAAA`],
    ['empty tag', `v1.${KeyVault.keyId(master)}.AAAAAAAAAAAAAAAA..AAAA`],
    ['non-base64 iv', `v1.${KeyVault.keyId(master)}.!!!!.AAAAAAAAAAAAAAAAAAAAAA.AAAA`],
    ['non-base64 tag', `v1.${KeyVault.keyId(master)}.AAAAAAAAAAAAAAAA.%%%%.AAAA`],
    ['1-byte tag', `v1.${KeyVault.keyId(master)}.AAAAAAAAAAAAAAAA.AA.AAAA`],
    ['all zero', `v1.${KeyVault.keyId(master)}.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA.AAAA`],
  ])('fails with an Error on %s input', (_what, sealed) => {
    expectOpenFails(() => vault.open(sealed, AAD));
  });
});
