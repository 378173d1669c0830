import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode } from '@custodian/contracts';
import { CustodianException, OutboxWriter } from '@custodian/platform';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { IdentityEvents } from '../events/identity-events.service';
import { CLOCK_TOLERANCE_SECONDS } from './oidc-client';
import { OidcSignInService } from './oidc-sign-in.service';
import type { OidcConnectionEntity } from './oidc.entities';

const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** A logout token older than this is refused even without `exp` (OIDC Back-Channel Logout 1.0 §2.6). */
const MAX_TOKEN_AGE_SECONDS = 600;

function refuse(reason: string, message = 'The logout token is not valid'): CustodianException {
  // The spec answers every refusal with 400; the reason says which check failed.
  return new CustodianException(ErrorCode.BadRequest, message, { reason });
}

/**
 * OIDC Back-Channel Logout 1.0: the IdP posts a signed logout token when a user's IdP session ends;
 * every Custodian session that sign-ins of that subject (or that IdP session, `sid`) started ends
 * with it, through the same revocation path as a logout (sessions revoked, evt.identity.revoked).
 */
@Injectable()
export class BackchannelLogoutService {
  private readonly keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

  constructor(
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(OidcSignInService) private readonly signIn: OidcSignInService,
  ) {}

  async logout(orgIdRaw: string, logoutToken: string | undefined): Promise<{ revokedSessions: number }> {
    const conn = await this.signIn.connection(orgIdRaw);
    if (!logoutToken || logoutToken.length > 16_384) throw refuse('missing', 'logout_token is required');
    const claims = await this.verify(conn, logoutToken);
    const sub = typeof claims.sub === 'string' ? claims.sub : undefined;
    const sid = typeof claims.sid === 'string' ? claims.sid : undefined;
    return this.events.transaction(async (m) => {
      const rows: Array<{ id: string }> = await m.query(
        `WITH families AS (
           SELECT family_id FROM oidc_session
            WHERE org_id = $1 AND issuer = $2 AND ($3::text IS NULL OR subject = $3) AND ($4::text IS NULL OR idp_sid = $4)),
         revoked AS (
           UPDATE session SET revoked_at = now()
            WHERE family_id IN (SELECT family_id FROM families) AND revoked_at IS NULL
           RETURNING id)
         SELECT id FROM revoked`,
        [conn.orgId, conn.issuer, sub ?? null, sid ?? null],
      );
      const ids = rows.map((r) => r.id);
      if (ids.length > 0) await this.events.revoked(m, { orgId: conn.orgId, kind: 'session', ids, reason: 'oidc_backchannel_logout' });
      await this.outbox.append(m, {
        orgId: conn.orgId,
        action: 'auth.oidc_logout',
        outcome: 'success',
        target: { type: 'oidc_subject', ...(sub ? { id: sub.slice(0, 128) } : {}) },
        details: { issuer: conn.issuer, ...(sub ? { subject: sub } : {}), ...(sid ? { sid } : {}), revokedSessions: ids.length },
      });
      return { revokedSessions: ids.length };
    });
  }

  private async verify(conn: OidcConnectionEntity, token: string): Promise<JWTPayload> {
    const config = await this.signIn.clientFor(conn);
    const meta = config.serverMetadata();
    if (!meta.jwks_uri) throw new CustodianException(ErrorCode.OidcProviderUnavailable, 'The identity provider publishes no JWKS');
    let header: { typ?: string };
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw refuse('malformed');
    }
    // typ is RECOMMENDED to be logout+jwt; an ID token (typ JWT) must never pass as a logout token.
    if (header.typ !== undefined && header.typ.toLowerCase() !== 'logout+jwt' && header.typ.toLowerCase() !== 'application/logout+jwt')
      throw refuse('typ');
    let keys = this.keySets.get(meta.jwks_uri);
    if (!keys) this.keySets.set(meta.jwks_uri, (keys = createRemoteJWKSet(new URL(meta.jwks_uri))));
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: meta.issuer,
        audience: conn.clientId,
        algorithms: meta.id_token_signing_alg_values_supported?.filter((a) => a !== 'none') ?? ['RS256'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        maxTokenAge: MAX_TOKEN_AGE_SECONDS,
        requiredClaims: ['iat', 'jti'],
      }));
    } catch (error) {
      const code = (error as { code?: string }).code;
      const claim = (error as { claim?: string }).claim;
      if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' || code === 'ERR_JWKS_NO_MATCHING_KEY') throw refuse('signature');
      if (code === 'ERR_JWT_EXPIRED') throw refuse('expired');
      if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED')
        throw refuse(claim === 'iss' ? 'issuer' : claim === 'aud' ? 'audience' : `claim_${claim ?? 'invalid'}`);
      if (typeof code === 'string' && code.startsWith('ERR_J')) throw refuse('invalid');
      throw new CustodianException(ErrorCode.OidcProviderUnavailable, "The identity provider's keys could not be fetched");
    }
    const events = payload.events as Record<string, unknown> | undefined;
    if (!events || typeof events !== 'object' || typeof events[LOGOUT_EVENT] !== 'object') throw refuse('events');
    if ('nonce' in payload) throw refuse('nonce');
    if (typeof payload.sub !== 'string' && typeof payload.sid !== 'string') throw refuse('sub_or_sid');
    return payload;
  }
}
