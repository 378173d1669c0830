import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, type PrincipalSnapshot } from '@custodian/contracts';
import { CONFIG, CustodianException, type CustodianConfig } from '@custodian/platform';
import { AGENT_SCOPES } from '@custodian/policy';
import type { Request, Response } from 'express';
import { decodeJwt } from 'jose';
import { AuthService } from '../auth/auth.service';
import { PrincipalSnapshotService } from '../auth/principal-snapshot.service';
import { SessionService } from '../auth/session.service';
import { SessionEntity } from '../entities/session.entity';
import { IdentityEvents } from '../events/identity-events.service';
import { renderConsentPage, renderErrorPage, sendPage } from './consent-page';
import { displayName, OAuthConsentsService } from './oauth-consents.service';
import { OAUTH_MOUNT, OAuthServerService } from './oauth-server.service';
import { OidcSignInService } from '../federation/oidc-sign-in.service';
import type { InteractionHandoff } from '../federation/oidc-login-state';
import type { InteractionDetails, OidcClient, OidcProvider } from './oidc-provider.loader';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const OIDC_SCOPES = new Set(['openid', 'offline_access']);

interface Context {
  provider: OidcProvider;
  details: InteractionDetails;
  client: OidcClient;
  requested: string[];
}

/**
 * The sign-in and consent step of an authorization request. One form: the user's email and
 * password (the org's password login, throttled like POST /auth/login) and which of the requested
 * agent scopes to allow. Every authorization proves the password again and creates its own
 * session, which the grant is bound to. A credential never mints a stronger one (ADR 0015): the
 * user must hold `agent_access`, the agent's scopes are narrowed again on every request (user ∩
 * scopes), and no bearer token can stand in for the password here.
 */
@Injectable()
export class OAuthInteractionService {
  constructor(
    @Inject(OAuthServerService) private readonly server: OAuthServerService,
    @Inject(AuthService) private readonly auth: AuthService,
    @Inject(SessionService) private readonly sessions: SessionService,
    @Inject(PrincipalSnapshotService) private readonly snapshots: PrincipalSnapshotService,
    @Inject(OAuthConsentsService) private readonly consents: OAuthConsentsService,
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(CONFIG) private readonly config: CustodianConfig,
    @Inject(OidcSignInService) private readonly federation: OidcSignInService,
  ) {}

  async show(req: Request, res: Response, uid: string): Promise<void> {
    const ctx = await this.context(req, res, uid);
    if (!ctx) return;
    sendPage(res, 200, this.page(ctx, uid, undefined, undefined, this.federation.handoff(uid, req.get('cookie')) !== undefined));
  }

  /**
   * "Sign in with your identity provider" on the consent page: only for the interaction this browser
   * is in (its oidc-provider cookie, this uid), and the OIDC callback returns to this uid — the login
   * state sealed in the OIDC cookie carries it, nothing in a URL decides where the browser goes back.
   */
  async startFederated(req: Request, res: Response, uid: string, orgRaw: unknown, hintRaw: unknown): Promise<void> {
    const ctx = await this.context(req, res, uid);
    if (!ctx) return;
    const org = typeof orgRaw === 'string' ? orgRaw.trim().toLowerCase() : '';
    // An optional login hint (the email) for the IdP: one printable string of at most 320 characters (R8).
    const hint = typeof hintRaw === 'string' ? hintRaw.trim() : '';
    // eslint-disable-next-line no-control-regex -- refusing control characters is the point
    const loginHint = hint && hint.length <= 320 && !/[\u0000-\u001f\u007f]/.test(hint) ? hint : undefined;
    let started: { location: string; cookie: string };
    try {
      if (!UUID.test(org)) throw CustodianException.notFound('not an org id');
      started = await this.federation.start(org, { interaction: uid, ...(loginHint ? { loginHint } : {}) }, this.secure());
    } catch (error) {
      if (error instanceof CustodianException && error.code === ErrorCode.NotFound) {
        sendPage(
          res,
          404,
          this.page(ctx, uid, undefined, 'That organization has no identity provider sign-in; sign in with your password.'),
        );
        return;
      }
      throw error;
    }
    res.setHeader('cache-control', 'no-store');
    res.append('Set-Cookie', started.cookie);
    res.redirect(302, started.location);
  }

  async answer(req: Request, res: Response, uid: string, form: URLSearchParams): Promise<void> {
    const ctx = await this.context(req, res, uid);
    if (!ctx) return;
    const { provider, client } = ctx;
    // An OIDC sign-in handed to this interaction is used once: the cookie goes with this answer.
    const handoff = this.federation.handoff(uid, req.get('cookie'));
    if (handoff) res.append('Set-Cookie', this.federation.clearHandoffCookie(uid, this.secure()));
    if (form.get('decision') !== 'allow') {
      if (handoff) await this.endHandoffSession(handoff);
      await this.consents.denied({ orgId: null, clientId: client.clientId, reason: 'declined' });
      await provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'The user declined the authorization' },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    const principal = handoff ? await this.federatedPrincipal(handoff) : await this.passwordPrincipal(res, ctx, uid, form);
    if (!principal) {
      if (handoff) sendPage(res, 400, this.page(ctx, uid, undefined, 'Your sign-in has ended; sign in again.'));
      return;
    }
    await this.grant(req, res, ctx, uid, principal, form);
  }

  /** The session an OIDC sign-in handed over, if it is still live (not revoked, not expired, same user and org). */
  private async federatedPrincipal(h: InteractionHandoff): Promise<PrincipalSnapshot | undefined> {
    const session = await this.events.read((m) => m.findOne(SessionEntity, { where: { id: h.sessionId } }));
    if (!session || session.userId !== h.userId || session.orgId !== h.org || session.revokedAt || session.expiresAt <= new Date())
      return undefined;
    return this.snapshots.build({ userId: h.userId, orgId: h.org, sessionId: h.sessionId });
  }

  private async endHandoffSession(h: InteractionHandoff): Promise<void> {
    const principal = await this.federatedPrincipal(h).catch(() => undefined);
    if (principal) await this.sessions.logout(principal);
  }

  private secure(): boolean {
    return this.config.agentGateway.publicUrl.startsWith('https:');
  }

  /** The password sign-in of the form; an answer page (and undefined) when it fails. */
  private async passwordPrincipal(res: Response, ctx: Context, uid: string, form: URLSearchParams): Promise<PrincipalSnapshot | undefined> {
    const email = (form.get('email') ?? '').slice(0, 320);
    const password = form.get('password') ?? '';
    const orgId = (form.get('orgId') ?? '').trim();
    if (email.length < 3 || password.length === 0 || password.length > 256 || (orgId !== '' && !UUID.test(orgId))) {
      sendPage(res, 400, this.page(ctx, uid, email, 'Enter your email and password (and a valid organization id, if any).'));
      return undefined;
    }
    let login: { accessToken: string; orgId: string };
    try {
      login = await this.auth.login({ email, password, ...(orgId ? { orgId } : {}) });
    } catch (error) {
      if (error instanceof CustodianException && error.code === ErrorCode.InvalidCredentials) {
        sendPage(res, 401, this.page(ctx, uid, email, 'Invalid email or password.'));
        return undefined;
      }
      if (error instanceof CustodianException && error.code === ErrorCode.PasswordLoginDisabled) {
        sendPage(
          res,
          403,
          this.page(
            ctx,
            uid,
            email,
            'Your organization signs in through its identity provider: use "Sign in with your identity provider" below.',
          ),
        );
        return undefined;
      }
      if (error instanceof CustodianException && error.code === ErrorCode.RateLimited) {
        res.setHeader('retry-after', String((error.details as { retryAfterSeconds?: number } | undefined)?.retryAfterSeconds ?? 60));
        sendPage(res, 429, this.page(ctx, uid, email, 'Too many failed sign-in attempts; try again later.'));
        return undefined;
      }
      throw error;
    }
    // The token login just minted for this session, read back for its ids; it is never handed out.
    const claims = decodeJwt(login.accessToken) as { sub: string; sid: string };
    return this.snapshots.build({ userId: claims.sub, orgId: login.orgId, sessionId: claims.sid });
  }

  /** The signed-in user's consent: agent_access, the chosen scopes, the grant bound to the session. */
  private async grant(
    req: Request,
    res: Response,
    ctx: Context,
    uid: string,
    principal: PrincipalSnapshot,
    form: URLSearchParams,
  ): Promise<void> {
    const { provider, client } = ctx;
    if (!principal.capabilities.includes('agent_access')) {
      await this.sessions.logout(principal);
      await this.consents.denied({
        orgId: principal.orgId,
        userId: principal.userId,
        clientId: client.clientId,
        reason: 'missing_agent_access',
      });
      sendPage(
        res,
        403,
        renderErrorPage('access_denied', 'Your account may not delegate to agents here (it lacks the agent_access capability).'),
      );
      return;
    }
    const chosen = form.has('scopes_chosen') ? ctx.requested.filter((s) => form.getAll('scope').includes(s)) : ctx.requested;
    if (chosen.length === 0) {
      await this.sessions.logout(principal);
      sendPage(res, 400, this.page(ctx, uid, undefined, 'Choose at least one scope, or deny.'));
      return;
    }
    const mcpResource = this.config.auth.mcpResource;
    // The agent scopes are the MCP resource's scopes, and are listed as the server's scopes too (so
    // its metadata names them): the grant carries the chosen ones both ways and rejects the rest.
    const grant = new provider.Grant({ accountId: principal.userId, clientId: client.clientId });
    grant.addResourceScope(mcpResource, chosen.join(' '));
    const oidc = requestedScopes(ctx.details).filter((s) => OIDC_SCOPES.has(s));
    grant.addOIDCScope([...oidc, ...chosen].join(' '));
    const declined = ctx.requested.filter((s) => !chosen.includes(s));
    if (declined.length > 0) {
      grant.rejectResourceScope(mcpResource, declined.join(' '));
      grant.rejectOIDCScope(declined.join(' '));
    }
    const grantId = await grant.save();
    const session = await this.events.read((m) => m.findOneOrFail(SessionEntity, { where: { id: principal.sessionId } }));
    await this.consents.record({
      grantId,
      orgId: principal.orgId,
      userId: principal.userId,
      sessionId: session.id,
      clientId: client.clientId,
      clientName: displayName(client.clientName, client.clientId),
      scopes: chosen,
      expiresAt: session.expiresAt,
    });
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: principal.userId }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
  }

  /** The interaction this browser is in (its cookie), for this uid; otherwise an error page and undefined. */
  private async context(req: Request, res: Response, uid: string): Promise<Context | undefined> {
    const provider = await this.server.provider();
    let details: InteractionDetails;
    try {
      details = await provider.interactionDetails(req, res);
    } catch {
      sendPage(
        res,
        400,
        renderErrorPage(
          'invalid_request',
          'This sign-in page has expired or was opened in another browser. Start again from your MCP client.',
        ),
      );
      return undefined;
    }
    const clientId = typeof details.params.client_id === 'string' ? details.params.client_id : '';
    const client = details.uid === uid && clientId ? await provider.Client.find(clientId) : undefined;
    if (!client) {
      sendPage(res, 400, renderErrorPage('invalid_request', 'Unknown authorization request.'));
      return undefined;
    }
    const requested = requestedScopes(details).filter((s) => (AGENT_SCOPES as readonly string[]).includes(s));
    if (requested.length === 0) {
      await provider.interactionFinished(
        req,
        res,
        { error: 'invalid_scope', error_description: `request at least one of: ${AGENT_SCOPES.join(' ')}` },
        { mergeWithLastSubmission: false },
      );
      return undefined;
    }
    return { provider, details, client, requested };
  }

  private page(ctx: Context, uid: string, email?: string, error?: string, federated = false): { html: string; nonce: string } {
    const redirect = typeof ctx.details.params.redirect_uri === 'string' ? ctx.details.params.redirect_uri : ctx.client.redirectUris[0];
    let redirectHost = '';
    try {
      const u = new URL(redirect ?? '');
      redirectHost = u.protocol === 'http:' || u.protocol === 'https:' ? u.host : `${u.protocol}//`;
    } catch {
      redirectHost = 'an unknown address';
    }
    return renderConsentPage({
      action: `${OAUTH_MOUNT}/interaction/${encodeURIComponent(uid)}`,
      clientName: displayName(ctx.client.clientName, ctx.client.clientId),
      clientId: ctx.client.clientId,
      redirectHost,
      resource: this.config.auth.mcpResource,
      scopes: ctx.requested,
      ...(email ? { email } : {}),
      ...(error ? { error } : {}),
      ...(federated ? { federated } : {}),
    });
  }
}

function requestedScopes(details: InteractionDetails): string[] {
  const scope = details.params.scope;
  return typeof scope === 'string' ? [...new Set(scope.split(' ').filter(Boolean))] : [];
}
