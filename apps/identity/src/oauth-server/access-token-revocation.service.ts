import { timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { Inject, Injectable } from '@nestjs/common';
import { CONFIG, type CustodianConfig } from '@custodian/platform';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { SigningKeyService } from '../keys/signing-key.service';
import { OAuthConsentsService } from './oauth-consents.service';
import { OAuthServerService } from './oauth-server.service';

/**
 * RFC 7009 for the JWT access tokens this server issues, which oidc-provider cannot revoke
 * (it answers `unsupported_token_type` for structured tokens): the client authenticates as at the
 * token endpoint, the token must verify as one of ours and name that client as `act.sub`, and then
 * its grant ends — its session is revoked, so every access token of the grant is refused (R10).
 * An invalid, expired or foreign token is answered 200 and changes nothing (RFC 7009 §2.2).
 */
@Injectable()
export class AccessTokenRevocationService {
  constructor(
    @Inject(OAuthServerService) private readonly server: OAuthServerService,
    @Inject(SigningKeyService) private readonly keys: SigningKeyService,
    @Inject(OAuthConsentsService) private readonly consents: OAuthConsentsService,
    @Inject(CONFIG) private readonly config: CustodianConfig,
  ) {}

  /** True when the form's token is a JWT and this answered the request; false to leave it to oidc-provider. */
  async handle(form: URLSearchParams, authorization: string | undefined, res: ServerResponse): Promise<boolean> {
    const token = form.get('token') ?? '';
    if (!isJwt(token)) return false;
    const credentials = clientCredentials(form, authorization);
    const client = credentials ? await (await this.server.provider()).Client.find(credentials.id) : undefined;
    if (!credentials || !client || !secretMatches(client, credentials.secret)) {
      answer(res, 401, { error: 'invalid_client', error_description: 'client authentication failed' });
      return true;
    }
    let claims: { sid?: unknown; act?: { sub?: unknown } } | undefined;
    try {
      ({ payload: claims } = await jwtVerify(token, createLocalJWKSet(await this.keys.jwks()), {
        issuer: this.config.auth.issuer,
        audience: this.config.auth.mcpResource,
        algorithms: ['EdDSA'],
        typ: 'at+jwt',
      }));
    } catch {
      claims = undefined;
    }
    if (claims && claims.act?.sub === client.clientId && typeof claims.sid === 'string') {
      await this.consents.endForSession(claims.sid, client.clientId);
    }
    answer(res, 200, undefined);
    return true;
  }
}

function isJwt(token: string): boolean {
  if (token.split('.').length !== 3) return false;
  try {
    return Boolean(decodeProtectedHeader(token));
  } catch {
    return false;
  }
}

/** client_secret_basic (RFC 6749 §2.3.1: form-encoded id and secret) or client_id/client_secret in the form. */
function clientCredentials(form: URLSearchParams, authorization: string | undefined): { id: string; secret?: string } | undefined {
  const basic = /^Basic ([A-Za-z0-9+/=]{1,2048})$/i.exec(authorization ?? '')?.[1];
  if (basic) {
    const decoded = Buffer.from(basic, 'base64').toString('utf8');
    const at = decoded.indexOf(':');
    if (at < 1) return undefined;
    try {
      return { id: decodeURIComponent(decoded.slice(0, at)), secret: decodeURIComponent(decoded.slice(at + 1)) };
    } catch {
      return undefined;
    }
  }
  const id = form.get('client_id');
  if (!id || id.length > 200) return undefined;
  const secret = form.get('client_secret');
  return secret === null ? { id } : { id, secret };
}

function secretMatches(client: { clientAuthMethod?: string; clientSecret?: string }, secret: string | undefined): boolean {
  if (client.clientAuthMethod === 'none') return secret === undefined;
  if (!client.clientSecret || secret === undefined) return false;
  const a = Buffer.from(client.clientSecret);
  const b = Buffer.from(secret);
  return a.length === b.length && timingSafeEqual(a, b);
}

function answer(res: ServerResponse, status: number, body: Record<string, string> | undefined): void {
  res.statusCode = status;
  res.setHeader('cache-control', 'no-store');
  if (body) {
    res.setHeader('content-type', 'application/json; charset=utf-8');
    res.end(JSON.stringify(body));
  } else {
    res.end();
  }
}
