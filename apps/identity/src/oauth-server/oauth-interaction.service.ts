import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode } from '@custodian/contracts';
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
  ) {}

  async show(req: Request, res: Response, uid: string): Promise<void> {
    const ctx = await this.context(req, res, uid);
    if (!ctx) return;
    sendPage(res, 200, this.page(ctx, uid));
  }

  async answer(req: Request, res: Response, uid: string, form: URLSearchParams): Promise<void> {
    const ctx = await this.context(req, res, uid);
    if (!ctx) return;
    const { provider, client } = ctx;
    if (form.get('decision') !== 'allow') {
      await this.consents.denied({ orgId: null, clientId: client.clientId, reason: 'declined' });
      await provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'The user declined the authorization' },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    const email = (form.get('email') ?? '').slice(0, 320);
    const password = form.get('password') ?? '';
    const orgId = (form.get('orgId') ?? '').trim();
    if (email.length < 3 || password.length === 0 || password.length > 256 || (orgId !== '' && !UUID.test(orgId))) {
      sendPage(res, 400, this.page(ctx, uid, email, 'Enter your email and password (and a valid organization id, if any).'));
      return;
    }
    let login: { accessToken: string; orgId: string };
    try {
      login = await this.auth.login({ email, password, ...(orgId ? { orgId } : {}) });
    } catch (error) {
      if (error instanceof CustodianException && error.code === ErrorCode.InvalidCredentials) {
        sendPage(res, 401, this.page(ctx, uid, email, 'Invalid email or password.'));
        return;
      }
      if (error instanceof CustodianException && error.code === ErrorCode.PasswordLoginDisabled) {
        // Signing in through the org's IdP from this page is not built yet (docs/sso.md).
        sendPage(
          res,
          403,
          this.page(ctx, uid, email, 'Your organization signs in through its identity provider; this page cannot do that yet.'),
        );
        return;
      }
      if (error instanceof CustodianException && error.code === ErrorCode.RateLimited) {
        res.setHeader('retry-after', String((error.details as { retryAfterSeconds?: number } | undefined)?.retryAfterSeconds ?? 60));
        sendPage(res, 429, this.page(ctx, uid, email, 'Too many failed sign-in attempts; try again later.'));
        return;
      }
      throw error;
    }
    // The token login just minted for this session, read back for its ids; it is never handed out.
    const claims = decodeJwt(login.accessToken) as { sub: string; sid: string };
    const principal = await this.snapshots.build({ userId: claims.sub, orgId: login.orgId, sessionId: claims.sid });
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
      sendPage(res, 400, this.page(ctx, uid, email, 'Choose at least one scope, or deny.'));
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

  private page(ctx: Context, uid: string, email?: string, error?: string): { html: string; nonce: string } {
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
    });
  }
}

function requestedScopes(details: InteractionDetails): string[] {
  const scope = details.params.scope;
  return typeof scope === 'string' ? [...new Set(scope.split(' ').filter(Boolean))] : [];
}
