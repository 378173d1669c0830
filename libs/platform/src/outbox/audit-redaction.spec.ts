import { randomBytes } from 'node:crypto';
import { KEYED_HASH_PREFIX, auditHashKey, isSecretKey, keyedHash, redactSecrets } from './audit-redaction';

describe('audit redaction (A5)', () => {
  const key = auditHashKey(randomBytes(32));

  it.each([
    'password',
    'newPassword',
    'refreshToken',
    'access_token',
    'apiKey',
    'clientSecret',
    'Authorization',
    'cookie',
    'credentials',
    'privateKey',
  ])('%s is a secret key', (k) => expect(isSecretKey(k)).toBe(true));
  it.each(['tokenType', 'apiKeyId', 'email', 'name', 'secretary_id', 'passwordChangedAt'])('%s is not', (k) =>
    expect(isSecretKey(k)).toBe(false),
  );

  it('answers the same when asked again (memoized) and after the memo fills up', () => {
    for (let round = 0; round < 2; round++) {
      expect([isSecretKey('clientSecret'), isSecretKey('apiKeyId'), isSecretKey('x-auth-token')]).toEqual([true, false, true]);
    }
    for (let i = 0; i < 10_001; i++) isSecretKey(`field_${i}`);
    expect([isSecretKey('clientSecret'), isSecretKey('apiKeyId'), isSecretKey('field_3')]).toEqual([true, false, false]);
  });

  it('replaces secrets at any depth with keyed hashes, stable per key, and keeps the rest', () => {
    const input = { email: 'a@b.c', password: 'hunter2', nested: [{ apiKey: 'ck_live_abc', note: 'ok' }], token: { raw: 'x' } };
    const out = redactSecrets(input, key);
    const text = JSON.stringify(out);
    for (const secret of ['hunter2', 'ck_live_abc', '"raw"']) expect(text).not.toContain(secret);
    expect(out.email).toBe('a@b.c');
    expect(out.nested[0].note).toBe('ok');
    expect(out.password).toBe(keyedHash('hunter2', key));
    expect(String(out.password).startsWith(KEYED_HASH_PREFIX)).toBe(true);
    expect(redactSecrets(out, key)).toEqual(out); // idempotent
    expect(redactSecrets(input, auditHashKey(randomBytes(32))).password).not.toBe(out.password); // keyed
    expect(input.password).toBe('hunter2'); // a copy
  });
});
