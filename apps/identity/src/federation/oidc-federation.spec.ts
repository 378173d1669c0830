import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { ErrorCode } from '@custodian/contracts';
import { classifyOidcError, isAllowedIssuer, publicJwk } from './oidc-client';
import { LoginStateSealer, readCookie } from './oidc-login-state';

const ORG = '0190f0f0-0000-7000-8000-000000000001';
const OTHER = '0190f0f0-0000-7000-8000-000000000002';

describe('LoginStateSealer (the sign-in cookie)', () => {
  const sealer = new LoginStateSealer(randomBytes(32));
  const state = { org: ORG, state: 's', nonce: 'n', verifier: 'v', exp: Date.now() + 60_000 };

  it('opens what it sealed, and the cookie does not show state, nonce or verifier', () => {
    const sealed = sealer.seal({ ...state, verifier: 'the-pkce-verifier' });
    expect(sealed).not.toContain('the-pkce-verifier');
    expect(sealer.open(ORG, sealed)).toEqual({ ...state, verifier: 'the-pkce-verifier' });
  });

  it('refuses another org, a changed byte, another master key, and an expired state', () => {
    const sealed = sealer.seal(state);
    expect(sealer.open(OTHER, sealed)).toBeUndefined();
    const parts = sealed.split('.');
    const body = Buffer.from(parts[1]!, 'base64url');
    body[0] = body[0]! ^ 1;
    expect(sealer.open(ORG, [parts[0], body.toString('base64url'), parts[2]].join('.'))).toBeUndefined();
    expect(new LoginStateSealer(randomBytes(32)).open(ORG, sealed)).toBeUndefined();
    expect(sealer.open(ORG, sealer.seal({ ...state, exp: Date.now() - 1 }))).toBeUndefined();
    expect(sealer.open(ORG, 'not.a.cookie')).toBeUndefined();
    expect(sealer.open(ORG, '')).toBeUndefined();
  });

  it('reads one cookie from a Cookie header', () => {
    expect(readCookie('a=1; custodian_oidc=xyz; b=2', 'custodian_oidc')).toBe('xyz');
    expect(readCookie('custodian_oidc_other=1', 'custodian_oidc')).toBeUndefined();
    expect(readCookie(undefined, 'custodian_oidc')).toBeUndefined();
  });
});

describe('the consent-page handoff (an OIDC sign-in handed to one OAuth interaction)', () => {
  const sealer = new LoginStateSealer(randomBytes(32));
  const h = { uid: 'uid-1', org: 'org-1', userId: 'u-1', sessionId: 's-1', exp: Date.now() + 60_000 };

  it('opens for its own interaction only, before it expires, and only under this installation key', () => {
    const sealed = sealer.sealHandoff(h);
    expect(sealer.openHandoff('uid-1', sealed)).toEqual(h);
    expect(sealer.openHandoff('uid-2', sealed)).toBeUndefined();
    expect(sealer.openHandoff('uid-1', sealed, h.exp + 1)).toBeUndefined();
    expect(new LoginStateSealer(randomBytes(32)).openHandoff('uid-1', sealed)).toBeUndefined();
  });

  it('is not a login state and a login state is not a handoff (separate associated data)', () => {
    const login = sealer.seal({ org: 'uid-1', state: 's', nonce: 'n', verifier: 'v', exp: Date.now() + 60_000 });
    expect(sealer.openHandoff('uid-1', login)).toBeUndefined();
    expect(sealer.open('uid-1', sealer.sealHandoff(h))).toBeUndefined();
  });
});

describe('issuer URLs', () => {
  it.each([
    ['https://login.example.com', true],
    ['https://login.microsoftonline.com/tenant/v2.0', true],
    ['http://127.0.0.1:8080', true],
    ['http://localhost:8080/realms/x', true],
    ['http://idp.example.com', false],
    ['https://user:pw@idp.example.com', false],
    ['https://idp.example.com/?a=1', false],
    ['https://idp.example.com/#x', false],
    ['ftp://idp.example.com', false],
    ['not a url', false],
  ])('%s → %s', (url, ok) => {
    expect(isAllowedIssuer(url)).toBe(ok);
  });
});

describe('the private_key_jwt key’s public half', () => {
  it('serves an RSA PEM key without its private parts, with a stable thumbprint kid', () => {
    const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const jwk = publicJwk(pem, 'RS256');
    expect(jwk).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    expect(jwk).not.toHaveProperty('d');
    expect(jwk).not.toHaveProperty('p');
    expect(publicJwk(pem, 'RS256').kid).toBe(jwk.kid);
  });

  it('keeps the kid a JWK names, and refuses what is not a key', () => {
    const jwk = { ...(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }) as object), kid: 'k1' };
    expect(publicJwk(JSON.stringify(jwk), 'ES256')).toMatchObject({ kty: 'EC', crv: 'P-256', kid: 'k1' });
    expect(() => publicJwk('not a key', 'RS256')).toThrow();
  });
});

describe('classifyOidcError', () => {
  // openid-client wraps oauth4webapi's OperationProcessingError, whose cause names the claim.
  const wrapped = (code: string, message: string, claim?: string): Error => {
    const inner = Object.assign(new Error(message), { code, cause: claim ? { claim } : {} });
    return Object.assign(new Error('wrapped'), { code, cause: inner });
  };

  it.each([
    [wrapped('OAUTH_JWT_CLAIM_COMPARISON_FAILED', 'unexpected ID Token "nonce" claim value', 'nonce'), ErrorCode.OidcNonceMismatch],
    [wrapped('OAUTH_JWT_CLAIM_COMPARISON_FAILED', 'unexpected JWT "iss" (issuer) claim value', 'iss'), ErrorCode.OidcIssuerMismatch],
    [wrapped('OAUTH_JWT_CLAIM_COMPARISON_FAILED', 'unexpected JWT "aud" (audience) claim value', 'aud'), ErrorCode.OidcAudienceMismatch],
    [wrapped('OAUTH_JWT_CLAIM_COMPARISON_FAILED', 'unexpected ID Token "azp" claim value', 'azp'), ErrorCode.OidcAudienceMismatch],
    [wrapped('OAUTH_JWT_CLAIM_COMPARISON_FAILED', 'invalid ID Token "c_hash"', 'c_hash'), ErrorCode.OidcTokenInvalid],
    [wrapped('OAUTH_JWT_TIMESTAMP_CHECK_FAILED', 'expiration is past current timestamp', 'exp'), ErrorCode.OidcTokenExpired],
    [wrapped('OAUTH_JWT_TIMESTAMP_CHECK_FAILED', 'nbf', 'nbf'), ErrorCode.OidcTokenInvalid],
    [wrapped('OAUTH_INVALID_RESPONSE', 'JWT signature verification failed'), ErrorCode.OidcSignatureInvalid],
    [wrapped('OAUTH_KEY_SELECTION_FAILED', 'no applicable keys found'), ErrorCode.OidcSignatureInvalid],
    [
      wrapped('OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED', '"response" body "issuer" property does not match the expected value'),
      ErrorCode.OidcIssuerMismatch,
    ],
    [
      Object.assign(new Error('server responded with an error'), { code: 'OAUTH_RESPONSE_BODY_ERROR', error: 'invalid_grant' }),
      ErrorCode.OidcProviderError,
    ],
    [Object.assign(new TypeError('fetch failed'), {}), ErrorCode.OidcProviderUnavailable],
  ])('%s → its own code', (error, code) => {
    expect(classifyOidcError(error).code).toBe(code);
  });
});
