import { createHash, createPrivateKey, createPublicKey, webcrypto, type JsonWebKey, type KeyObject } from 'node:crypto';
import { ErrorCode } from '@custodian/contracts';
import { CustodianException } from '@custodian/platform';
import type * as OpenIdClient from 'openid-client' with { 'resolution-mode': 'import' };
import type { OidcConnectionEntity } from './oidc.entities';

// openid-client is ESM-only: Node 20.19+ loads it with require(esm), jest transforms it (jest.config.cjs).
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const oidc = require('openid-client') as typeof OpenIdClient;
export type OidcConfiguration = OpenIdClient.Configuration;

/** Seconds of clock difference accepted in the IdP's `iat`/`exp`/`nbf` (both directions). */
export const CLOCK_TOLERANCE_SECONDS = 30;
/** Discovery documents are refetched after this long (new endpoints, new keys through the JWKS cache). */
const DISCOVERY_TTL_MS = 10 * 60_000;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** http is only for an IdP on this machine (development, tests); everything else must be https. */
export function isAllowedIssuer(raw: string): boolean {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return false;
  }
  if (url.username || url.password || url.search || url.hash) return false;
  return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname));
}

export const PRIVATE_KEY_ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;
export type PrivateKeyAlg = (typeof PRIVATE_KEY_ALGS)[number];

const WEBCRYPTO_PARAMS: Record<PrivateKeyAlg, webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams | webcrypto.Algorithm> = {
  RS256: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  PS256: { name: 'RSA-PSS', hash: 'SHA-256' },
  ES256: { name: 'ECDSA', namedCurve: 'P-256' },
  EdDSA: { name: 'Ed25519' },
};

/** A private key given as PEM (PKCS#8 or PKCS#1/SEC1) or as a JWK; undefined when it is neither. */
export function parsePrivateKey(text: string): { key: KeyObject; kid?: string } | undefined {
  try {
    const trimmed = text.trim();
    if (trimmed.startsWith('{')) {
      const jwk = JSON.parse(trimmed) as JsonWebKey & { kid?: string };
      const key = createPrivateKey({ key: jwk, format: 'jwk' });
      return { key, ...(typeof jwk.kid === 'string' ? { kid: jwk.kid } : {}) };
    }
    return { key: createPrivateKey(trimmed) };
  } catch {
    return undefined;
  }
}

/** The public half of the client's private_key_jwt key, as the JWKS the IdP may fetch (kid = RFC 7638 thumbprint unless given). */
export function publicJwk(text: string, alg: PrivateKeyAlg): webcrypto.JsonWebKey & { kid: string } {
  const parsed = parsePrivateKey(text);
  if (!parsed) throw new CustodianException(ErrorCode.ValidationFailed, 'The private key is not a PEM or JWK private key');
  const jwk = createPublicKey(parsed.key).export({ format: 'jwk' }) as webcrypto.JsonWebKey & Record<string, string>;
  return { ...jwk, alg, use: 'sig', kid: parsed.kid ?? thumbprint(jwk) };
}

function thumbprint(jwk: Record<string, string>): string {
  const members: Record<string, string[]> = { RSA: ['e', 'kty', 'n'], EC: ['crv', 'kty', 'x', 'y'], OKP: ['crv', 'kty', 'x'] };
  const names = members[jwk.kty!] ?? ['kty'];
  const canonical = JSON.stringify(Object.fromEntries(names.map((n) => [n, jwk[n]])));
  return createHash('sha256').update(canonical).digest('base64url');
}

async function clientAuth(conn: OidcConnectionEntity, secret: string): Promise<OpenIdClient.ClientAuth> {
  switch (conn.clientAuth) {
    case 'client_secret_post':
      return oidc.ClientSecretPost(secret);
    case 'private_key_jwt': {
      const alg = (conn.privateKeyAlg ?? 'RS256') as PrivateKeyAlg;
      const jwk = parsePrivateKey(secret);
      if (!jwk) throw new CustodianException(ErrorCode.OidcProviderUnavailable, 'The private_key_jwt key of this connection does not load');
      const exported = jwk.key.export({ format: 'jwk' });
      const key = await webcrypto.subtle.importKey('jwk', exported, WEBCRYPTO_PARAMS[alg], false, ['sign']);
      return oidc.PrivateKeyJwt({ key, kid: publicJwk(secret, alg).kid });
    }
    default:
      return oidc.ClientSecretBasic(secret);
  }
}

/**
 * The openid-client Configuration of an org's connection: discovery from the issuer (whose
 * metadata must name that same issuer), the client authentication, and ID-token signature checks
 * against the IdP's JWKS (openid-client skips those by default for tokens from the token endpoint;
 * we want them, issue #18). Cached per connection version and secret for DISCOVERY_TTL_MS.
 */
export class OidcClientCache {
  private readonly cache = new Map<string, { key: string; at: number; config: Promise<OidcConfiguration> }>();

  async configuration(conn: OidcConnectionEntity, secret: string | undefined): Promise<OidcConfiguration> {
    if (!secret) throw new CustodianException(ErrorCode.OidcProviderUnavailable, 'The connection has no client secret or key set');
    const key = `${conn.version}:${conn.issuer}:${conn.clientId}:${createHash('sha256').update(secret).digest('base64url')}`;
    const hit = this.cache.get(conn.orgId);
    if (hit && hit.key === key && Date.now() - hit.at < DISCOVERY_TTL_MS) return hit.config;
    const config = (async () => {
      const issuer = new URL(conn.issuer);
      const metadata: Partial<OpenIdClient.ClientMetadata> = { [oidc.clockTolerance]: CLOCK_TOLERANCE_SECONDS };
      const configuration = await oidc.discovery(issuer, conn.clientId, metadata, await clientAuth(conn, secret), {
        execute: issuer.protocol === 'http:' ? [oidc.allowInsecureRequests] : [],
        timeout: 10,
      });
      oidc.enableNonRepudiationChecks(configuration);
      return configuration;
    })();
    this.cache.set(conn.orgId, { key, at: Date.now(), config });
    // A failed discovery is not kept: the next sign-in tries again.
    config.catch(() => {
      if (this.cache.get(conn.orgId)?.config === config) this.cache.delete(conn.orgId);
    });
    return config;
  }

  forget(orgId: string): void {
    this.cache.delete(orgId);
  }
}

/** A failure of openid-client (oauth4webapi) as the refusal the caller sees: one code per cause. */
export function classifyOidcError(error: unknown): CustodianException {
  if (error instanceof CustodianException) return error;
  type Coded = { code?: unknown; message?: unknown; cause?: unknown; error?: unknown };
  const e = error as Coded;
  // openid-client wraps oauth4webapi's error: the inner one says which check failed and on what claim.
  const inner = (e.cause instanceof Error ? e.cause : e) as Coded;
  const message = typeof inner.message === 'string' ? inner.message : '';
  const detail = inner.cause as { claim?: unknown } | undefined;
  const claim = typeof detail?.claim === 'string' ? detail.claim : undefined;
  switch (e.code) {
    case 'OAUTH_JWT_CLAIM_COMPARISON_FAILED':
      if (claim === 'nonce') return new CustodianException(ErrorCode.OidcNonceMismatch, 'The ID token was not issued for this sign-in');
      if (claim === 'iss') return new CustodianException(ErrorCode.OidcIssuerMismatch, 'The ID token comes from another issuer');
      if (claim === 'aud' || claim === 'azp')
        return new CustodianException(ErrorCode.OidcAudienceMismatch, 'The ID token was issued for another client');
      return new CustodianException(ErrorCode.OidcTokenInvalid, 'The ID token is invalid', { claim });
    case 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED':
      if (claim === 'exp') return new CustodianException(ErrorCode.OidcTokenExpired, 'The ID token has expired');
      return new CustodianException(ErrorCode.OidcTokenInvalid, 'The ID token is not valid at this time', { claim });
    case 'OAUTH_KEY_SELECTION_FAILED':
      return new CustodianException(ErrorCode.OidcSignatureInvalid, 'The ID token is not signed by a key of the identity provider');
    case 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED':
      if (/issuer/.test(message))
        return new CustodianException(ErrorCode.OidcIssuerMismatch, 'The identity provider names another issuer in its metadata');
      return new CustodianException(ErrorCode.OidcTokenInvalid, 'The identity provider answered unexpectedly');
    case 'OAUTH_RESPONSE_BODY_ERROR':
    case 'OAUTH_AUTHORIZATION_RESPONSE_ERROR':
      return new CustodianException(ErrorCode.OidcProviderError, 'The identity provider refused the sign-in', {
        error: typeof e.error === 'string' ? e.error.slice(0, 64) : undefined,
      });
    case 'OAUTH_INVALID_RESPONSE':
      if (/signature/i.test(message)) return new CustodianException(ErrorCode.OidcSignatureInvalid, 'The ID token signature is invalid');
      return new CustodianException(ErrorCode.OidcTokenInvalid, 'The identity provider answered with an invalid response');
    default:
      if (typeof e.code === 'string' && e.code.startsWith('OAUTH_'))
        return new CustodianException(ErrorCode.OidcTokenInvalid, 'The identity provider answered with an invalid response');
      if (typeof e.code === 'string' && e.code.startsWith('ERR_JW'))
        return new CustodianException(ErrorCode.OidcTokenInvalid, 'The identity provider answered with an invalid response');
      // Network failures, timeouts, an IdP that is down.
      return new CustodianException(ErrorCode.OidcProviderUnavailable, 'The identity provider could not be reached');
  }
}
