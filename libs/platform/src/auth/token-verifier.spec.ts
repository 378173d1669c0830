import { randomUUID } from 'node:crypto';
import { ErrorCode, type Jwks } from '@custodian/contracts';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload, type KeyLike } from 'jose';
import pino from 'pino';
import { CustodianException } from '../errors/custodian.exception';
import { TokenVerifier, type TokenVerifierOptions } from './token-verifier';

// Access tokens are verified locally with identity's JWKS (QUALITY I1–I5). The tokens below are
// real: signed with jose, and the only fake is the JWKS fetch, so every refusal is the verifier's.

const ISSUER = 'urn:custodian:identity';
const AUDIENCE = 'urn:custodian:api';
const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);
const COOLDOWN_MS = 30_000;
const OPTS: TokenVerifierOptions = { issuer: ISSUER, audience: AUDIENCE, clockToleranceSeconds: 30, refetchCooldownMs: COOLDOWN_MS };
const REFUSAL_MESSAGE = 'Invalid or expired access token';

interface SigningKey {
  kid: string;
  privateKey: KeyLike;
  publicKey: KeyLike;
  jwk: Jwks['keys'][number];
}

async function newSigningKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const exported = await exportJWK(publicKey);
  return { kid, privateKey, publicKey, jwk: { kty: exported.kty!, crv: exported.crv, x: exported.x, kid, alg: 'EdDSA', use: 'sig' } };
}

function standardClaims(): JWTPayload {
  return { sub: randomUUID(), org: randomUUID(), sid: randomUUID() };
}

interface TokenOptions {
  claims?: JWTPayload;
  header?: Record<string, unknown>;
  alg?: string;
  key?: KeyLike | Uint8Array;
  kid?: string;
  typ?: string | null;
  iss?: string | null;
  aud?: string | null;
  expiresInSeconds?: number | null;
  /** Absolute `iat` in epoch seconds; null leaves it out; default now. */
  iat?: number | null;
}

async function sign(signer: SigningKey, o: TokenOptions = {}): Promise<string> {
  const header: Record<string, unknown> = { alg: o.alg ?? 'EdDSA', kid: o.kid ?? signer.kid, ...o.header };
  if (o.typ !== null) header.typ = o.typ ?? 'at+jwt';
  const jwt = new SignJWT(o.claims ?? standardClaims()).setProtectedHeader(header as { alg: string });
  if (o.iat !== null) jwt.setIssuedAt(o.iat);
  if (o.iss !== null) jwt.setIssuer(o.iss ?? ISSUER);
  if (o.aud !== null) jwt.setAudience(o.aud ?? AUDIENCE);
  if (o.expiresInSeconds !== null) jwt.setExpirationTime(Math.floor(Date.now() / 1000) + (o.expiresInSeconds ?? 300));
  return jwt.sign(o.key ?? signer.privateKey);
}

const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Awaits a verification that must fail and returns the exception it failed with. */
async function refusal(promise: Promise<unknown>): Promise<CustodianException> {
  const outcome = await promise.then(
    (claims) => ({ ok: true as const, claims }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  if (outcome.ok) throw new Error(`expected the token to be refused, got claims ${JSON.stringify(outcome.claims)}`);
  expect(outcome.error).toBeInstanceOf(CustodianException);
  const error = outcome.error as CustodianException;
  expect(error.code).toBe(ErrorCode.Unauthenticated);
  expect(error.message).toBe(REFUSAL_MESSAGE);
  expect(error.details).toBeUndefined();
  return error;
}

describe('TokenVerifier', () => {
  let key: SigningKey;
  let fetchJwks: jest.Mock<Promise<Jwks>, []>;
  let verifier: TokenVerifier;
  const logger = pino({ level: 'silent' });

  beforeAll(async () => {
    key = await newSigningKey('key-2030-01');
  });

  beforeEach(() => {
    // Only the clock is faked: jose and the verifier read Date.now(); promises and crypto run for real.
    jest.useFakeTimers({ now: T0, doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    fetchJwks = jest.fn<Promise<Jwks>, []>(async () => ({ keys: [key.jwk] }));
    verifier = new TokenVerifier(OPTS, fetchJwks, logger);
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  describe('a valid access token', () => {
    it('is accepted and returns its claims', async () => {
      const claims = standardClaims();
      const claimsOut = await verifier.verify(await sign(key, { claims }));
      expect(claimsOut).toMatchObject({ ...claims, iss: ISSUER, aud: AUDIENCE });
      expect(fetchJwks).toHaveBeenCalledTimes(1);
    });

    it('is accepted with akid instead of sid (delegated from an API key) and uses the cached JWKS afterwards', async () => {
      await verifier.verify(await sign(key));
      const claims = { sub: randomUUID(), org: randomUUID(), akid: randomUUID() };
      await expect(verifier.verify(await sign(key, { claims }))).resolves.toMatchObject(claims);
      expect(fetchJwks).toHaveBeenCalledTimes(1);
    });

    it.each([['application/at+jwt'], ['AT+JWT'], ['Application/At+Jwt']])(
      'is accepted with typ %p (RFC 9068 long form, any case)',
      async (typ) => {
        await expect(verifier.verify(await sign(key, { typ }))).resolves.toMatchObject({ iss: ISSUER });
      },
    );
  });

  describe('credential binding', () => {
    it('refuses a token that names neither a session (sid) nor an API key (akid)', async () => {
      await refusal(verifier.verify(await sign(key, { claims: { sub: randomUUID(), org: randomUUID() } })));
    });

    it('refuses a token that names both a session and an API key', async () => {
      await refusal(verifier.verify(await sign(key, { claims: { ...standardClaims(), akid: randomUUID() } })));
    });
  });

  describe('issued-at and lifetime', () => {
    const now = T0 / 1000;

    it('refuses a token without iat', async () => {
      await refusal(verifier.verify(await sign(key, { iat: null })));
    });

    it('refuses a token issued in the future beyond the clock tolerance, accepts one within it', async () => {
      await refusal(verifier.verify(await sign(key, { iat: now + 31, expiresInSeconds: 300 })));
      await refusal(verifier.verify(await sign(key, { iat: now + 3600, expiresInSeconds: 3900 })));
      await expect(verifier.verify(await sign(key, { iat: now + 20, expiresInSeconds: 300 }))).resolves.toMatchObject({ iss: ISSUER });
    });

    it('refuses a 10-year token by default (lifetime capped at one hour)', async () => {
      await refusal(verifier.verify(await sign(key, { expiresInSeconds: 10 * 365 * 86_400 })));
      await refusal(verifier.verify(await sign(key, { expiresInSeconds: 3601 })));
      await expect(verifier.verify(await sign(key, { expiresInSeconds: 3600 }))).resolves.toMatchObject({ iss: ISSUER });
    });

    it('refuses a token living longer than the configured maximum lifetime', async () => {
      const strict = new TokenVerifier({ ...OPTS, maxLifetimeSeconds: 330 }, fetchJwks, logger);
      await refusal(strict.verify(await sign(key, { expiresInSeconds: 331 })));
      // Backdating iat does not help: the lifetime is exp - iat, whatever the clock says.
      await refusal(strict.verify(await sign(key, { iat: now - 600, expiresInSeconds: 300 })));
      await expect(strict.verify(await sign(key, { expiresInSeconds: 330 }))).resolves.toMatchObject({ iss: ISSUER });
    });
  });

  describe('I1 algorithm confusion', () => {
    it('refuses alg "none" (any spelling) without a JWKS lookup', async () => {
      const payload = b64url({ ...standardClaims(), iss: ISSUER, aud: AUDIENCE, iat: T0 / 1000, exp: T0 / 1000 + 300 });
      for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
        const header = b64url({ alg, typ: 'at+jwt', kid: key.kid });
        await refusal(verifier.verify(`${header}.${payload}.`));
        // A signature segment must not make it any better.
        await refusal(verifier.verify(`${header}.${payload}.${Buffer.from('sig').toString('base64url')}`));
      }
      expect(fetchJwks).not.toHaveBeenCalled();
    });

    it('refuses HS256 signed with the public key as HMAC secret (PEM, raw bytes and JWK x)', async () => {
      await verifier.verify(await sign(key)); // the JWKS is loaded, so the kid is known
      const pem = (key.publicKey as unknown as { export(o: object): string }).export({ type: 'spki', format: 'pem' });
      const secrets = [Buffer.from(pem), Buffer.from(key.jwk.x!, 'base64url'), Buffer.from(key.jwk.x!)];
      for (const secret of secrets) {
        for (const alg of ['HS256', 'HS384', 'HS512']) {
          await refusal(verifier.verify(await sign(key, { alg, key: new Uint8Array(secret) })));
        }
      }
      expect(fetchJwks).toHaveBeenCalledTimes(1);
    });

    it('refuses RS256 and ES256 tokens, algorithms not on the allowlist, even with a known kid', async () => {
      await verifier.verify(await sign(key));
      for (const alg of ['RS256', 'PS256', 'ES256', 'ES384']) {
        const other = await generateKeyPair(alg);
        await refusal(verifier.verify(await sign(key, { alg, key: other.privateKey })));
      }
      expect(fetchJwks).toHaveBeenCalledTimes(1);
    });

    it('refuses a token signed by an untrusted Ed25519 key under a trusted kid', async () => {
      const attacker = await newSigningKey(key.kid);
      await refusal(verifier.verify(await sign(attacker)));
    });

    it('refuses tampered claims and garbage', async () => {
      const token = await sign(key);
      const [h, , s] = token.split('.');
      const forged = b64url({ ...standardClaims(), iss: ISSUER, aud: AUDIENCE, iat: T0 / 1000, exp: T0 / 1000 + 300 });
      await refusal(verifier.verify(`${h}.${forged}.${s}`));
      for (const garbage of ['', 'a', 'a.b.c', '...', `${h}..`, 'eyJ.eyJ.eyJ']) await refusal(verifier.verify(garbage));
    });
  });

  describe('I2 expiry', () => {
    it('refuses a token without exp', async () => {
      await refusal(verifier.verify(await sign(key, { expiresInSeconds: null })));
    });

    it('refuses a token expired beyond the clock tolerance', async () => {
      const token = await sign(key, { expiresInSeconds: 300 });
      jest.setSystemTime(T0 + (300 + 31) * 1000);
      await refusal(verifier.verify(token));
    });

    it('accepts a token expired within the clock tolerance', async () => {
      const token = await sign(key, { expiresInSeconds: 300 });
      jest.setSystemTime(T0 + (300 + 20) * 1000);
      await expect(verifier.verify(token)).resolves.toMatchObject({ iss: ISSUER });
    });

    it('refuses a token whose exp is not a number', async () => {
      await refusal(
        verifier.verify(
          await sign(key, { expiresInSeconds: null, claims: { ...standardClaims(), exp: '9999999999' as unknown as number } }),
        ),
      );
    });
  });

  describe('I3 audience, issuer and type', () => {
    it('refuses a wrong audience and a wrong issuer', async () => {
      await refusal(verifier.verify(await sign(key, { aud: 'urn:custodian:other' })));
      await refusal(verifier.verify(await sign(key, { aud: null })));
      await refusal(verifier.verify(await sign(key, { iss: 'https://evil.example' })));
      await refusal(verifier.verify(await sign(key, { iss: null })));
    });

    it.each([['JWT'], ['refresh+jwt'], ['id+jwt'], ['application/jwt'], [null]])('refuses typ %p', async (typ) => {
      await refusal(verifier.verify(await sign(key, { typ })));
    });
  });

  describe('I4 key lookup is never steered by the token', () => {
    const badKids = [
      ['a path', '../../etc/passwd'],
      ['SQL', "' OR 1=1 --"],
      ['a URL', 'https://evil.example/key'],
      ['10 KB', 'k'.repeat(10 * 1024)],
      ['65 characters', 'k'.repeat(65)],
      ['empty', ''],
      ['a NUL byte', 'key\u0000'],
    ];

    it.each(badKids)('refuses a kid that is %s without a JWKS lookup', async (_what, kid) => {
      await refusal(verifier.verify(await sign(key, { kid })));
      expect(fetchJwks).not.toHaveBeenCalled();
    });

    it('refuses a kid that is not a string without a JWKS lookup', async () => {
      await refusal(verifier.verify(await sign(key, { header: { kid: 42 } })));
      await refusal(verifier.verify(await sign(key, { header: { kid: ['key-2030-01'] } })));
      expect(fetchJwks).not.toHaveBeenCalled();
    });

    it.each([
      ['jku', { jku: 'https://evil.example/jwks.json' }],
      ['x5u', { x5u: 'https://evil.example/cert.pem' }],
      ['jwk', { jwk: { kty: 'OKP', crv: 'Ed25519', x: 'AAAA' } }],
      ['x5c', { x5c: ['MIIB'] }],
    ])('refuses a token carrying a %s header without a JWKS lookup', async (_name, extra) => {
      await refusal(verifier.verify(await sign(key, { header: extra })));
      expect(fetchJwks).not.toHaveBeenCalled();
    });

    it('refuses an embedded jwk header even when it names the real signing key', async () => {
      const embedded = await newSigningKey(key.kid);
      await refusal(verifier.verify(await sign(embedded, { header: { jwk: embedded.jwk } })));
      expect(fetchJwks).not.toHaveBeenCalled();
    });

    it('refuses a token longer than 8192 characters without a JWKS lookup', async () => {
      const token = await sign(key, { claims: { ...standardClaims(), pad: 'p'.repeat(8200) } });
      expect(token.length).toBeGreaterThan(8192);
      await refusal(verifier.verify(token));
      expect(fetchJwks).not.toHaveBeenCalled();
    });
  });

  describe('I5 JWKS refetching', () => {
    it('picks up a new signing key with exactly one refetch', async () => {
      await verifier.verify(await sign(key));
      expect(fetchJwks).toHaveBeenCalledTimes(1);

      const next = await newSigningKey('key-2030-02');
      fetchJwks.mockImplementation(async () => ({ keys: [key.jwk, next.jwk] }));
      jest.setSystemTime(T0 + COOLDOWN_MS + 1);

      await expect(verifier.verify(await sign(next))).resolves.toBeDefined();
      expect(fetchJwks).toHaveBeenCalledTimes(2);
      await expect(verifier.verify(await sign(next))).resolves.toBeDefined();
      await expect(verifier.verify(await sign(key))).resolves.toBeDefined();
      expect(fetchJwks).toHaveBeenCalledTimes(2);
    });

    it('lets a flood of 1,000 unknown kids cause at most one fetch per cooldown', async () => {
      const flood = (round: number): Promise<string[]> =>
        Promise.all(Array.from({ length: 1000 }, (_, i) => sign(key, { kid: `unknown-${round}-${i}` })));

      // From a verifier that never fetched: the flood, one after another.
      for (const token of await flood(0)) await refusal(verifier.verify(token));
      expect(fetchJwks).toHaveBeenCalledTimes(1);

      // Cooldown over: a concurrent flood gets one fetch, not a thousand.
      jest.setSystemTime(T0 + COOLDOWN_MS + 1);
      const tokens = await flood(1);
      await Promise.all(tokens.map((t) => refusal(verifier.verify(t))));
      expect(fetchJwks).toHaveBeenCalledTimes(2);

      // Still inside that cooldown: nothing more.
      jest.setSystemTime(T0 + COOLDOWN_MS + 1 + COOLDOWN_MS - 1);
      for (const token of tokens.slice(0, 100)) await refusal(verifier.verify(token));
      expect(fetchJwks).toHaveBeenCalledTimes(2);

      // Valid tokens are still served from the cache throughout.
      await expect(verifier.verify(await sign(key))).resolves.toBeDefined();
      expect(fetchJwks).toHaveBeenCalledTimes(2);
    });

    it('shares one in-flight fetch between concurrent verifications on a cold verifier', async () => {
      const pending = deferred<Jwks>();
      fetchJwks.mockImplementation(() => pending.promise);
      const tokens = await Promise.all(Array.from({ length: 20 }, () => sign(key)));
      const results = Promise.all(tokens.map((t) => verifier.verify(t)));
      pending.resolve({ keys: [key.jwk] });
      await expect(results).resolves.toHaveLength(20);
      expect(fetchJwks).toHaveBeenCalledTimes(1);
    });

    it('shares one in-flight refetch between concurrent verifications of a new key', async () => {
      await verifier.verify(await sign(key));
      const next = await newSigningKey('key-2030-02');
      const pending = deferred<Jwks>();
      fetchJwks.mockImplementation(() => pending.promise);
      jest.setSystemTime(T0 + COOLDOWN_MS + 1);

      const tokens = await Promise.all(Array.from({ length: 20 }, () => sign(next)));
      const results = Promise.all(tokens.map((t) => verifier.verify(t)));
      pending.resolve({ keys: [key.jwk, next.jwk] });
      await expect(results).resolves.toHaveLength(20);
      expect(fetchJwks).toHaveBeenCalledTimes(2);
    });

    it('refetches a JWKS older than maxAgeMs, so a retired key stops verifying', async () => {
      const aged = new TokenVerifier({ ...OPTS, maxAgeMs: 60_000 }, fetchJwks, logger);
      await aged.verify(await sign(key));
      const next = await newSigningKey('key-2030-02');
      fetchJwks.mockImplementation(async () => ({ keys: [next.jwk] })); // `key` retired
      jest.setSystemTime(T0 + 59_000);
      await expect(aged.verify(await sign(key))).resolves.toBeDefined();
      expect(fetchJwks).toHaveBeenCalledTimes(1);
      jest.setSystemTime(T0 + 61_000);
      await refusal(aged.verify(await sign(key)));
      expect(fetchJwks).toHaveBeenCalledTimes(2);
    });

    it('refuses (same 401) when the JWKS cannot be fetched', async () => {
      fetchJwks.mockRejectedValue(new Error('identity unavailable'));
      await refusal(verifier.verify(await sign(key)));
    });
  });

  describe('claims', () => {
    it.each([
      ['sub', { sub: 'admin', org: randomUUID(), sid: randomUUID() }],
      ['org', { sub: randomUUID(), org: '1', sid: randomUUID() }],
      ['org (missing)', { sub: randomUUID(), sid: randomUUID() }],
      ['sub (uppercase uuid)', { sub: randomUUID().toUpperCase(), org: randomUUID(), sid: randomUUID() }],
      ['sid', { sub: randomUUID(), org: randomUUID(), sid: 'session' }],
      ['akid', { sub: randomUUID(), org: randomUUID(), akid: '../key' }],
      ['sid (not a string)', { sub: randomUUID(), org: randomUUID(), sid: 42 }],
      ['org (not a string)', { sub: randomUUID(), org: 12345, sid: randomUUID() }],
    ])('refuses a non-uuid %s', async (_what, claims) => {
      await refusal(verifier.verify(await sign(key, { claims })));
    });
  });

  it('gives no oracle: every refusal has the same code and message', async () => {
    const attempts: Array<Promise<string>> = [
      sign(key, { typ: 'JWT' }),
      sign(key, { aud: 'x' }),
      sign(key, { expiresInSeconds: -3600 }),
      sign(key, { kid: 'unknown-kid' }),
      sign(key, { kid: '../../etc/passwd' }),
      sign(key, { header: { jku: 'https://evil.example' } }),
      sign(key, { claims: { sub: 'x', org: 'y' } }),
      sign(key, { alg: 'HS256', key: new Uint8Array(32) }),
      Promise.resolve('not-a-token'),
      Promise.resolve('x'.repeat(9000)),
    ];
    const errors: CustodianException[] = [];
    for (const token of await Promise.all(attempts)) errors.push(await refusal(verifier.verify(token)));
    expect(new Set(errors.map((e) => JSON.stringify({ code: e.code, message: e.message, details: e.details }))).size).toBe(1);
  });
});
