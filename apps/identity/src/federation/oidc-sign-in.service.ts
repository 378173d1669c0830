import { createHash, timingSafeEqual } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode } from '@custodian/contracts';
import { CustodianException, OutboxWriter } from '@custodian/platform';
import { AuthService, type TokenResponse } from '../auth/auth.service';
import { conflictOnDuplicate } from '../directory/directory.http';
import { SessionService } from '../auth/session.service';
import { IdentityEvents } from '../events/identity-events.service';
import { OIDC_CLIENT_CACHE, OidcConfigService } from './oidc-config.service';
import { classifyOidcError, oidc, type OidcClientCache, type OidcConfiguration } from './oidc-client';
import {
  HANDOFF_COOKIE,
  HANDOFF_TTL_SECONDS,
  LOGIN_STATE_COOKIE,
  LOGIN_STATE_TTL_SECONDS,
  LoginStateSealer,
  handoffCookiePath,
  loginStateCookiePath,
  readCookie,
  type InteractionHandoff,
} from './oidc-login-state';
import { OidcProvisioningService, type IdTokenClaims } from './oidc-provisioning.service';
import { OidcSessionEntity, type OidcConnectionEntity } from './oidc.entities';

export const LOGIN_STATE_SEALER = Symbol('LOGIN_STATE_SEALER');

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function sameText(a: string, b: string): boolean {
  const [x, y] = [createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest()];
  return timingSafeEqual(x, y);
}

/** Issues the ordinary Custodian session of an OIDC sign-in (the same rows, tokens and audit as a password login). */
@Injectable()
export class OidcSessionIssuer {
  constructor(
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(SessionService) private readonly sessions: SessionService,
    @Inject(AuthService) private readonly auth: AuthService,
    @Inject(OidcProvisioningService) private readonly provisioning: OidcProvisioningService,
  ) {}

  /** Provisioning, the session row and its link to the IdP session commit together or not at all. */
  async signIn(conn: OidcConnectionEntity, claims: IdTokenClaims): Promise<TokenResponse> {
    // Two first sign-ins of one identity at once: the loser's insert collides and it may simply retry.
    const work = this.events.transaction(async (m) => {
      const resolved = await this.provisioning.resolve(m, conn, claims);
      const issued = await this.sessions.issue(m, { userId: resolved.userId, orgId: conn.orgId });
      const idpSid = typeof claims.sid === 'string' && claims.sid.length <= 255 ? claims.sid : null;
      await m.insert(OidcSessionEntity, {
        familyId: issued.session.familyId,
        orgId: conn.orgId,
        issuer: conn.issuer,
        subject: claims.sub,
        idpSid,
        userId: resolved.userId,
      });
      await this.outbox.append(m, {
        orgId: conn.orgId,
        action: 'auth.login',
        outcome: 'success',
        actor: { userId: resolved.userId, sessionId: issued.session.id },
        target: { type: 'session', id: issued.session.id },
        details: { method: 'oidc', issuer: conn.issuer, subject: claims.sub, account: resolved.how },
      });
      // The user's links to sessions that are over are of no use to a logout any more.
      await m.query(
        `DELETE FROM oidc_session o WHERE o.org_id = $1 AND o.user_id = $2
            AND NOT EXISTS (SELECT 1 FROM session s WHERE s.family_id = o.family_id AND s.revoked_at IS NULL AND s.expires_at > now())`,
        [conn.orgId, resolved.userId],
      );
      return { userId: resolved.userId, sessionId: issued.session.id, refreshToken: issued.refreshToken };
    });
    const { userId, sessionId, refreshToken } = await conflictOnDuplicate(
      work,
      'A sign-in of this identity is already under way; try again',
    );
    const accessToken = await this.auth.accessToken({ sub: userId, org: conn.orgId, sid: sessionId });
    return { tokenType: 'Bearer', accessToken, expiresIn: this.auth.accessTokenTtl(), refreshToken, orgId: conn.orgId };
  }
}

/**
 * OIDC sign-in of one org, authorization code + PKCE (S256) with openid-client: `start` sends the
 * browser to the IdP with `state` and `nonce`, sealed with the PKCE verifier into a short-lived
 * httpOnly cookie; `callback` checks the state against that cookie, exchanges the code and validates
 * the ID token (issuer, audience, signature, expiry, nonce), then provisions and signs in. Every
 * refusal has its own code and is audited as `auth.login_failed` with the IdP and the reason.
 */
@Injectable()
export class OidcSignInService {
  constructor(
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(OidcConfigService) private readonly configs: OidcConfigService,
    @Inject(OIDC_CLIENT_CACHE) private readonly clients: OidcClientCache,
    @Inject(LOGIN_STATE_SEALER) private readonly sealer: LoginStateSealer,
    @Inject(OidcSessionIssuer) private readonly issuer: OidcSessionIssuer,
  ) {}

  /** The enabled connection of the org named in the path; anything else is 404 (R1: no org oracle). */
  async connection(orgIdRaw: string): Promise<OidcConnectionEntity> {
    const conn = UUID.test(orgIdRaw) ? await this.events.read((m) => this.configs.enabled(m, orgIdRaw)) : undefined;
    if (!conn) throw CustodianException.notFound('No OIDC sign-in is configured for this organization');
    return conn;
  }

  /**
   * Public: whether an org signs in through an IdP, by org id or by an email's domain (one enabled
   * connection listing that domain in allowedEmailDomains; none or several → no). Says nothing else:
   * only the start URL, which the sign-in page needs.
   */
  async discover(q: { org?: string; email?: string }): Promise<{ oidc: boolean; startUrl?: string }> {
    let orgId: string | undefined;
    if (q.org !== undefined) {
      const org = q.org.trim().toLowerCase();
      if (UUID.test(org)) orgId = (await this.events.read((m) => this.configs.enabled(m, org)))?.orgId;
    } else if (q.email !== undefined) {
      const at = q.email.lastIndexOf('@');
      const domain =
        at > 0
          ? q.email
              .slice(at + 1)
              .trim()
              .toLowerCase()
          : '';
      if (/^[a-z0-9.-]{1,253}$/.test(domain)) {
        const rows: Array<{ org_id: string }> = await this.events.read((m) =>
          m.query(`SELECT org_id FROM oidc_connection WHERE enabled AND allowed_email_domains @> $1::jsonb LIMIT 2`, [
            JSON.stringify([domain]),
          ]),
        );
        if (rows.length === 1) orgId = rows[0]!.org_id;
      }
    }
    return orgId ? { oidc: true, startUrl: this.configs.urls(orgId).startUrl } : { oidc: false };
  }

  async clientFor(conn: OidcConnectionEntity): Promise<OidcConfiguration> {
    const secret = await this.events.read((m) => this.configs.credential(m, conn));
    try {
      return await this.clients.configuration(conn, secret);
    } catch (error) {
      throw classifyOidcError(error);
    }
  }

  async start(
    orgIdRaw: string,
    opts: { loginHint?: string; session?: 'cookie'; interaction?: string },
    secure: boolean,
  ): Promise<{ location: string; cookie: string }> {
    const loginHint = opts.loginHint;
    const conn = await this.connection(orgIdRaw);
    const config = await this.clientFor(conn);
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.configs.urls(conn.orgId).redirectUri,
      response_type: 'code',
      scope: conn.scopes.join(' '),
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...(loginHint ? { login_hint: loginHint } : {}),
    });
    const sealed = this.sealer.seal({
      org: conn.orgId,
      state,
      nonce,
      verifier,
      exp: Date.now() + LOGIN_STATE_TTL_SECONDS * 1000,
      ...(opts.session ? { session: opts.session } : {}),
      ...(opts.interaction ? { interaction: opts.interaction } : {}),
    });
    // SameSite=Lax: the IdP's redirect back is a top-level cross-site GET, which Lax lets through (Strict would not).
    const cookie = `${LOGIN_STATE_COOKIE}=${sealed}; Path=${loginStateCookiePath(conn.orgId)}; HttpOnly; SameSite=Lax; Max-Age=${LOGIN_STATE_TTL_SECONDS}${secure ? '; Secure' : ''}`;
    return { location: url.href, cookie };
  }

  /**
   * The cookie that hands an OIDC sign-in's session to the OAuth interaction `uid` (the consent page
   * that started it): sealed, bound to that uid, httpOnly, 5 minutes, on that page's path only.
   */
  handoffCookie(h: Omit<InteractionHandoff, 'exp'>, secure: boolean): string {
    const sealed = this.sealer.sealHandoff({ ...h, exp: Date.now() + HANDOFF_TTL_SECONDS * 1000 });
    return `${HANDOFF_COOKIE}=${sealed}; Path=${handoffCookiePath(h.uid)}; HttpOnly; SameSite=Lax; Max-Age=${HANDOFF_TTL_SECONDS}${secure ? '; Secure' : ''}`;
  }

  /** The handoff this browser holds for interaction `uid`, if any (valid, unexpired, sealed for that uid). */
  handoff(uid: string, cookieHeader: string | undefined): InteractionHandoff | undefined {
    const sealed = readCookie(cookieHeader, HANDOFF_COOKIE);
    return sealed ? this.sealer.openHandoff(uid, sealed) : undefined;
  }

  clearHandoffCookie(uid: string, secure: boolean): string {
    return `${HANDOFF_COOKIE}=; Path=${handoffCookiePath(uid)}; HttpOnly; SameSite=Lax; Max-Age=0${secure ? '; Secure' : ''}`;
  }

  /** The cookie that ends the sign-in's state (set on every callback answer: a state is used once). */
  clearCookie(orgIdRaw: string, secure: boolean): string {
    const path = loginStateCookiePath(UUID.test(orgIdRaw) ? orgIdRaw : 'none');
    return `${LOGIN_STATE_COOKIE}=; Path=${path}; HttpOnly; SameSite=Lax; Max-Age=0${secure ? '; Secure' : ''}`;
  }

  async callback(
    orgIdRaw: string,
    query: Record<string, string>,
    cookieHeader: string | undefined,
  ): Promise<{ tokens: TokenResponse; session?: 'cookie'; interaction?: string }> {
    const conn = await this.connection(orgIdRaw);
    const sealed = readCookie(cookieHeader, LOGIN_STATE_COOKIE);
    const started = sealed ? this.sealer.open(conn.orgId, sealed) : undefined;
    if (!started) {
      return this.refuse(
        conn,
        new CustodianException(ErrorCode.OidcStateInvalid, 'No sign-in was started from this browser, or it expired'),
      );
    }
    if (typeof query.state !== 'string' || !sameText(query.state, started.state)) {
      return this.refuse(
        conn,
        new CustodianException(ErrorCode.OidcStateInvalid, 'The state does not match the sign-in this browser started'),
      );
    }
    if (typeof query.error === 'string') {
      return this.refuse(
        conn,
        new CustodianException(ErrorCode.OidcProviderError, 'The identity provider refused the sign-in', {
          error: query.error.slice(0, 64),
        }),
      );
    }
    let claims: IdTokenClaims;
    try {
      const config = await this.clientFor(conn);
      const current = new URL(this.configs.urls(conn.orgId).redirectUri);
      for (const [k, v] of Object.entries(query)) current.searchParams.set(k, v);
      const tokens = await oidc.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: started.verifier,
        expectedState: started.state,
        expectedNonce: started.nonce,
        idTokenExpected: true,
      });
      const c = tokens.claims();
      if (!c || typeof c.sub !== 'string' || c.sub.length === 0 || c.sub.length > 255)
        throw new CustodianException(ErrorCode.OidcTokenInvalid, 'The ID token has no usable subject');
      claims = c as IdTokenClaims;
    } catch (error) {
      return this.refuse(conn, classifyOidcError(error));
    }
    try {
      return {
        tokens: await this.issuer.signIn(conn, claims),
        ...(started.session ? { session: started.session } : {}),
        ...(started.interaction ? { interaction: started.interaction } : {}),
      };
    } catch (error) {
      if (error instanceof CustodianException && error.code !== ErrorCode.ServiceUnavailable) return this.refuse(conn, error, claims.sub);
      throw error;
    }
  }

  private async refuse(conn: OidcConnectionEntity, error: CustodianException, subject?: string): Promise<never> {
    const reason = (error.details as { reason?: unknown } | undefined)?.reason;
    await this.events.transaction((m) =>
      this.outbox.append(m, {
        orgId: conn.orgId,
        action: 'auth.login_failed',
        outcome: 'failure',
        target: { type: 'user' },
        details: {
          method: 'oidc',
          issuer: conn.issuer,
          reason: error.code,
          ...(typeof reason === 'string' ? { detail: reason } : {}),
          ...(subject ? { subject } : {}),
        },
      }),
    );
    throw error;
  }
}
