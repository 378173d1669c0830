import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseReference, resolveReference } from './secret-reference';
import { SettingsCipher, SettingsCipherError } from './settings-cipher';

const ORG = '0190f0f0-0000-7000-8000-000000000001';
const OTHER = '0190f0f0-0000-7000-8000-000000000002';

describe('SettingsCipher', () => {
  const cipher = new SettingsCipher(randomBytes(32));

  it('opens what it sealed, and the sealed text does not contain the secret', () => {
    const sealed = cipher.seal(ORG, 'model.api_key', 'sk-very-secret');
    expect(sealed).not.toContain('sk-very-secret');
    expect(cipher.open(ORG, 'model.api_key', sealed)).toBe('sk-very-secret');
  });

  it('binds the value to its org and name (a sealed value moved to another row does not open)', () => {
    const sealed = cipher.seal(ORG, 'model.api_key', 'sk-1');
    expect(() => cipher.open(OTHER, 'model.api_key', sealed)).toThrow(SettingsCipherError);
    expect(() => cipher.open(ORG, 'smtp.password', sealed)).toThrow(SettingsCipherError);
  });

  it('refuses tampered text and text sealed with another master key', () => {
    const sealed = cipher.seal(ORG, 'n', 'value');
    const parts = sealed.split('.');
    const flipped = Buffer.from(parts[3]!, 'base64url');
    flipped[0] = flipped[0]! ^ 1;
    expect(() => cipher.open(ORG, 'n', [...parts.slice(0, 3), flipped.toString('base64url'), parts[4]].join('.'))).toThrow(
      SettingsCipherError,
    );
    const other = new SettingsCipher(randomBytes(32));
    expect(other.keyId).not.toBe(cipher.keyId);
    expect(() => other.open(ORG, 'n', sealed)).toThrow(/another master key/);
    expect(SettingsCipher.keyIdOf(sealed)).toBe(cipher.keyId);
  });

  it('uses a fresh IV each time', () => {
    expect(cipher.seal(ORG, 'n', 'same')).not.toBe(cipher.seal(ORG, 'n', 'same'));
  });
});

describe('secret references', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'custodian-secrets-'));
  const outside = mkdtempSync(path.join(tmpdir(), 'custodian-outside-'));
  const policy = { envPrefix: 'CUSTODIAN_SECRET_', fileDirs: [dir] };

  it('env references must carry the prefix, so the process’s own secrets cannot be named', async () => {
    expect(parseReference('env:CUSTODIAN_MASTER_KEY', policy)).toMatch(/starting with CUSTODIAN_SECRET_/);
    expect(parseReference('env:DATABASE_URL', policy)).toEqual(expect.any(String));
    const ref = parseReference('env:CUSTODIAN_SECRET_OPENAI', policy);
    expect(ref).toEqual({ kind: 'env', name: 'CUSTODIAN_SECRET_OPENAI' });
    await expect(resolveReference(ref as never, policy, { CUSTODIAN_SECRET_OPENAI: 'sk-env' })).resolves.toBe('sk-env');
  });

  it('file references stay inside the allowed directories, through symlinks too', async () => {
    writeFileSync(path.join(dir, 'key'), 'sk-file\n');
    writeFileSync(path.join(outside, 'master'), 'do-not-read');
    symlinkSync(path.join(outside, 'master'), path.join(dir, 'link'));
    expect(parseReference(`file:${dir}/../etc/passwd`, policy)).toEqual(expect.any(String));
    expect(parseReference('file:/etc/passwd', policy)).toEqual(expect.any(String));
    expect(parseReference('file:relative', policy)).toEqual(expect.any(String));
    await expect(resolveReference({ kind: 'file', path: path.join(dir, 'key') }, policy)).resolves.toBe('sk-file');
    await expect(resolveReference({ kind: 'file', path: path.join(dir, 'link') }, policy)).resolves.toBeUndefined();
    await expect(resolveReference({ kind: 'file', path: path.join(dir, 'missing') }, policy)).resolves.toBeUndefined();
  });
});
