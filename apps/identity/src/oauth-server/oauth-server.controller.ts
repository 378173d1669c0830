import { All, Controller, Get, Inject, Param, Post, Req, Res } from '@nestjs/common';
import { ErrorCode } from '@custodian/contracts';
import { AnyObject, ApiContract, CONFIG, CustodianException, Public, type CustodianConfig } from '@custodian/platform';
import type { Request, Response } from 'express';
import { OAUTH_MOUNT, OAuthServerService } from './oauth-server.service';
import { AccessTokenRevocationService } from './access-token-revocation.service';
import { OAuthInteractionService } from './oauth-interaction.service';

const MAX_FORM_BYTES = 16 * 1024;

/**
 * The authorization server's HTTP surface. Public: each endpoint authenticates what it needs itself
 * (the client at the token endpoint, the code verifier, the refresh token, the password on the
 * consent page) — OAuth endpoints cannot sit behind Custodian's bearer guard.
 */
@Controller()
export class OAuthServerController {
  constructor(
    @Inject(OAuthServerService) private readonly server: OAuthServerService,
    @Inject(OAuthInteractionService) private readonly interactions: OAuthInteractionService,
    @Inject(AccessTokenRevocationService) private readonly revocation: AccessTokenRevocationService,
    @Inject(CONFIG) private readonly config: CustodianConfig,
  ) {}

  /**
   * RFC 8414 metadata: `/.well-known/oauth-authorization-server` + the issuer's path (`/oauth`), and
   * at the origin root for clients of the 2025-03-26 MCP revision, which look there.
   */
  @Public()
  @ApiContract({
    summary: 'OAuth 2.0 authorization server metadata (RFC 8414) of the OAuth server for MCP clients',
    responses: { 200: AnyObject },
  })
  @Get(['.well-known/oauth-authorization-server/oauth', '.well-known/oauth-authorization-server'])
  async metadata(@Req() req: Request, @Res() res: Response): Promise<void> {
    await this.server.handle(req, res, '/.well-known/openid-configuration');
  }

  /** The sign-in and consent page of one authorization request. */
  @Public()
  @ApiContract({
    summary: 'The sign-in and consent page of an authorization request (HTML)',
    responses: { 200: { contentType: 'text/html' } },
  })
  @Get('oauth/interaction/:uid')
  async page(@Req() req: Request, @Res() res: Response, @Param('uid') uid: string): Promise<void> {
    await this.interactions.show(req, res, uid);
  }

  /**
   * "Sign in with your identity provider" from the consent page: starts the org's OIDC sign-in for
   * this interaction (this browser's only); the callback comes back to this interaction's page.
   */
  @Public()
  @ApiContract({
    summary: "Start the org's OIDC sign-in from the consent page (redirects to the identity provider; back to this interaction)",
    responses: { 302: null, 404: { contentType: 'text/html' } },
  })
  @Get('oauth/interaction/:uid/idp')
  async federated(@Req() req: Request, @Res() res: Response, @Param('uid') uid: string): Promise<void> {
    await this.interactions.startFederated(req, res, uid, req.query.org, req.query.login_hint);
  }

  @Public()
  @ApiContract({
    summary: 'Answer the consent page: sign in with the password and allow, or deny (form post; redirects back to the client)',
    bodyType: 'application/x-www-form-urlencoded',
    responses: { 303: null },
  })
  @Post('oauth/interaction/:uid')
  async answer(@Req() req: Request, @Res() res: Response, @Param('uid') uid: string): Promise<void> {
    // Defence in depth beside the SameSite=Lax interaction cookie: a browser's cross-site POST names its origin.
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== new URL(this.config.agentGateway.publicUrl).origin) {
      throw CustodianException.forbidden('Cross-origin form post refused');
    }
    await this.interactions.answer(req, res, uid, new URLSearchParams((await readForm(req)).toString('utf8')));
  }

  /** Everything else under /oauth is oidc-provider's: authorize, token, registration, revocation, JWKS. */
  @Public()
  @ApiContract({
    summary: 'OAuth 2.1 server (oidc-provider): /oauth/auth, /oauth/token, /oauth/reg, /oauth/token/revocation, /oauth/jwks',
    description: 'OAuth endpoints answer RFC 6749 errors (`error`, `error_description`), not problem+json. See docs/sso.md.',
    responses: { 200: { contentType: 'application/json' } },
    errorContentType: 'application/json',
  })
  @All(['oauth', 'oauth/*path'])
  async provider(@Req() req: Request, @Res() res: Response): Promise<void> {
    const path = req.path.slice(OAUTH_MOUNT.length) || '/';
    if (path === '/token/revocation' && req.method === 'POST' && isForm(req)) {
      // JWT access tokens are revoked here (oidc-provider cannot); anything else goes on, unchanged.
      const body = await readForm(req);
      if (await this.revocation.handle(new URLSearchParams(body.toString('utf8')), req.headers.authorization, res)) return;
      await this.server.handle(req, res, path, body);
      return;
    }
    await this.server.handle(req, res, path);
  }
}

function isForm(req: Request): boolean {
  return (req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded');
}

/** An application/x-www-form-urlencoded body, bounded (R8); anything else is a 4xx. */
async function readForm(req: Request): Promise<Buffer> {
  if (!isForm(req)) {
    throw new CustodianException(ErrorCode.ValidationFailed, 'Expected a form post', {
      issues: [{ path: '/', message: 'content-type must be application/x-www-form-urlencoded' }],
    });
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new CustodianException(ErrorCode.PayloadTooLarge, 'Form too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
