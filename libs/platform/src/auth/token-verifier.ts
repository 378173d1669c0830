import { ErrorCode, type Jwks } from '@custodian/contracts';
import { createLocalJWKSet, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { Logger } from 'pino';
import { CustodianException } from '../errors/custodian.exception';

export const ACCESS_TOKEN_TYPE = 'at+jwt';
/** Without a configured maximum, no access token may live longer than the longest configurable TTL. */
export const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS = 3600;
export const ALLOWED_ALGORITHMS = ['EdDSA'] as const;
const KID = /^[A-Za-z0-9_-]{1,64}$/;
const FORBIDDEN_HEADERS = ['jku', 'x5u', 'jwk', 'x5c', 'x5t', 'x5t#S256'];
const MAX_TOKEN_LENGTH = 8192;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface AccessTokenClaims extends JWTPayload {
  sub: string;
  org: string;
  sid?: string;
  akid?: string;
}

export interface TokenVerifierOptions {
  issuer: string;
  audience: string;
  clockToleranceSeconds: number;
  /**
   * Longest `exp - iat` accepted; a token minted to live longer (a leaked signing key's 10-year
   * token) is refused. Default one hour.
   */
  maxLifetimeSeconds?: number;
  /** Unknown kids trigger at most one JWKS refetch per this interval (a kid flood cannot flood). */
  refetchCooldownMs?: number;
  /** A JWKS older than this is refetched before use, so a retired key stops verifying (default 15 min). */
  maxAgeMs?: number;
}

/**
 * Verifies access tokens locally with identity's JWKS: algorithm allowlist, no key material taken
 * from the token (jku/x5u/jwk/x5c refused before any lookup), required exp/iat/iss/aud/typ/sub/org,
 * exactly one of sid/akid, an iat not in the future, a bounded lifetime, and a plain kid. Every
 * failure is the same 401 to the caller; the reason goes to the log.
 */
export class TokenVerifier {
  private jwks: Jwks | undefined;
  private keySet: ReturnType<typeof createLocalJWKSet> | undefined;
  private lastFetch = 0;
  private fetching: Promise<void> | undefined;

  constructor(
    private readonly opts: TokenVerifierOptions,
    private readonly fetchJwks: () => Promise<Jwks>,
    private readonly logger: Logger,
  ) {}

  async verify(token: string): Promise<AccessTokenClaims> {
    const fail = (reason: string): never => {
      this.logger.info({ reason }, 'access token refused');
      throw new CustodianException(ErrorCode.Unauthenticated, 'Invalid or expired access token');
    };
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) return fail('token length');
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      return fail('malformed header');
    }
    if (!ALLOWED_ALGORITHMS.includes(header.alg as (typeof ALLOWED_ALGORITHMS)[number]))
      return fail(`algorithm ${String(header.alg).slice(0, 16)}`);
    if (FORBIDDEN_HEADERS.some((h) => h in header)) return fail('key material in header');
    if (typeof header.kid !== 'string' || !KID.test(header.kid)) return fail('kid');
    if (!isAccessTokenType(header.typ)) return fail('typ');
    const keySet = await this.keySetFor(header.kid);
    if (!keySet) return fail('unknown kid');
    try {
      const { payload } = await jwtVerify(token, keySet, {
        issuer: this.opts.issuer,
        audience: this.opts.audience,
        algorithms: [...ALLOWED_ALGORITHMS],
        typ: ACCESS_TOKEN_TYPE,
        clockTolerance: this.opts.clockToleranceSeconds,
        requiredClaims: ['exp', 'iat', 'sub', 'org'],
      });
      const ids = [
        payload.sub,
        payload.org,
        ...(payload.sid === undefined ? [] : [payload.sid]),
        ...(payload.akid === undefined ? [] : [payload.akid]),
      ];
      if (!ids.every((v) => typeof v === 'string' && UUID.test(v))) return fail('claims');
      // Every access token is bound to one live credential (a session or an API key) that identity can revoke.
      if ((payload.sid === undefined) === (payload.akid === undefined)) return fail('credential binding');
      const nowSeconds = Date.now() / 1000;
      const iat = payload.iat!;
      if (iat > nowSeconds + this.opts.clockToleranceSeconds) return fail('iat in the future');
      if (payload.exp! - iat > (this.opts.maxLifetimeSeconds ?? DEFAULT_MAX_TOKEN_LIFETIME_SECONDS)) return fail('lifetime');
      return payload as AccessTokenClaims;
    } catch (error) {
      return fail(error instanceof joseErrors.JOSEError ? error.code : 'verify');
    }
  }

  private async keySetFor(kid: string): Promise<ReturnType<typeof createLocalJWKSet> | undefined> {
    if (this.jwks && !this.fetching && Date.now() - this.lastFetch > (this.opts.maxAgeMs ?? 900_000)) await this.refresh();
    if (!this.jwks?.keys.some((k) => k.kid === kid)) {
      const cooldown = this.opts.refetchCooldownMs ?? 30_000;
      // A fetch already in flight is shared, not refused by the cooldown it just started.
      if (this.fetching) await this.fetching;
      else if (this.jwks && Date.now() - this.lastFetch < cooldown) return undefined;
      else await this.refresh();
      if (!this.jwks?.keys.some((k) => k.kid === kid)) return undefined;
    }
    return this.keySet;
  }

  private async refresh(): Promise<void> {
    this.fetching ??= (async () => {
      try {
        this.lastFetch = Date.now();
        this.jwks = await this.fetchJwks();
        this.keySet = createLocalJWKSet(this.jwks as Parameters<typeof createLocalJWKSet>[0]);
      } catch (error) {
        this.logger.warn({ err: error }, 'JWKS fetch failed');
      } finally {
        this.fetching = undefined;
      }
    })();
    await this.fetching;
  }
}

/** `typ` is a media type: case-insensitive, and `application/` may be omitted (RFC 7515 §4.1.9, RFC 9068 §2.1). */
function isAccessTokenType(typ: unknown): boolean {
  if (typeof typ !== 'string') return false;
  const lower = typ.toLowerCase();
  return lower === ACCESS_TOKEN_TYPE || lower === `application/${ACCESS_TOKEN_TYPE}`;
}
