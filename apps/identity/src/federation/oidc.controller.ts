import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Query, Req, Res } from '@nestjs/common';
import { ErrorCode } from '@custodian/contracts';
import {
  API_PREFIX,
  ApiContract,
  CONFIG,
  CustodianException,
  Public,
  RequirePolicy,
  assertValid,
  type CustodianConfig,
} from '@custodian/platform';
import type { Request, Response } from 'express';
import { decodeJwt } from 'jose';
import type { AuthedRequest } from '../directory/directory.http';
import { NoStore } from '../auth/no-store';
import { setRefreshCookie } from '../auth/refresh-cookie';
import { BackchannelLogoutService } from './backchannel-logout.service';
import { publicJwk, type PrivateKeyAlg } from './oidc-client';
import { OidcConfigService, type OidcConnectionView } from './oidc-config.service';
import { TokenAnswer } from '../identity.api-schemas';
import {
  OidcCallbackQuerySchema,
  OidcConnectionInputSchema,
  OidcConnectionViewSchema,
  OidcDiscoverAnswerSchema,
  OidcDiscoverQuerySchema,
  OidcJwksSchema,
  OidcStartQuerySchema,
} from './oidc-config.schemas';
import { OidcSignInService } from './oidc-sign-in.service';

const MAX_FORM_BYTES = 64 * 1024;
const MAX_QUERY_VALUE = 4096;
const CALLBACK_PARAMS = new Set([
  'code',
  'state',
  'iss',
  'session_state',
  'error',
  'error_description',
  'error_uri',
  'scope',
  'authuser',
  'hd',
  'prompt',
]);

function badQuery(path: string, message: string): CustodianException {
  return new CustodianException(ErrorCode.ValidationFailed, 'Invalid query', { issues: [{ path, message }] });
}

/** Query values as strings only (express may parse `a[b]=c` into objects), bounded (R8). */
function stringQuery(query: Record<string, unknown>, allowed: ReadonlySet<string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(query)) {
    if (!allowed.has(key)) continue;
    if (typeof value !== 'string' || value.length > MAX_QUERY_VALUE) throw badQuery(`/${key}`, 'one string value');
    out[key] = value;
  }
  return out;
}

/** `/api/v1/auth/oidc/config`: the org's IdP connection (manage_users and manage_settings; secrets write-only). */
@Controller(`${API_PREFIX}/auth/oidc/config`)
export class OidcConfigController {
  constructor(@Inject(OidcConfigService) private readonly configs: OidcConfigService) {}

  @RequirePolicy({ capabilities: ['manage_users', 'manage_settings'] })
  @ApiContract({
    summary: "The org's OIDC identity provider connection (secrets write-only)",
    responses: { 200: OidcConnectionViewSchema },
  })
  @Get()
  get(@Req() req: AuthedRequest): Promise<OidcConnectionView> {
    return this.configs.get(req.principal);
  }

  @RequirePolicy({ capabilities: ['manage_users', 'manage_settings'] })
  @ApiContract({
    summary: "Set the org's OIDC connection (the whole of it; omitted secrets are kept)",
    body: OidcConnectionInputSchema,
    responses: { 200: OidcConnectionViewSchema },
    problems: ['validation_failed', 'forbidden'],
  })
  @Put()
  put(@Req() req: AuthedRequest, @Body() body: unknown): Promise<OidcConnectionView> {
    return this.configs.put(req.principal, assertValid(OidcConnectionInputSchema, body, { what: 'OIDC connection' }));
  }

  @RequirePolicy({ capabilities: ['manage_users', 'manage_settings'] })
  @ApiContract({ summary: "Remove the org's OIDC connection and its secrets (password login is on again)", responses: { 204: null } })
  @Delete()
  @HttpCode(204)
  async remove(@Req() req: AuthedRequest): Promise<void> {
    await this.configs.remove(req.principal);
  }
}

/** `/api/v1/auth/oidc/discover`: public — does this org (id, or an email's domain) sign in through an IdP? */
@Controller(`${API_PREFIX}/auth/oidc/discover`)
export class OidcDiscoveryController {
  constructor(@Inject(OidcSignInService) private readonly signIn: OidcSignInService) {}

  @Public()
  @NoStore()
  @ApiContract({
    summary: 'Whether an org (by id, or by an email address domain) signs in through an identity provider, and its start URL',
    query: OidcDiscoverQuerySchema,
    responses: { 200: OidcDiscoverAnswerSchema },
    problems: ['validation_failed'],
  })
  @Get()
  discover(@Query() query: Record<string, unknown>): Promise<{ oidc: boolean; startUrl?: string }> {
    const { org, email } = stringQuery(query, new Set(['org', 'email']));
    if (org === undefined && email === undefined) throw badQuery('/', 'org or email');
    return this.signIn.discover(org !== undefined ? { org } : { email: email! });
  }
}

/**
 * The browser and IdP side of an org's OIDC sign-in: public routes (the IdP's signed tokens and the
 * sealed login cookie are the credentials). `:org` is the org id.
 */
@Controller(`${API_PREFIX}/auth/oidc/:org`)
export class OidcSignInController {
  constructor(
    @Inject(OidcSignInService) private readonly signIn: OidcSignInService,
    @Inject(BackchannelLogoutService) private readonly backchannel: BackchannelLogoutService,
    @Inject(OidcConfigService) private readonly configs: OidcConfigService,
    @Inject(CONFIG) config: CustodianConfig,
  ) {
    this.refreshTtlSeconds = config.auth.refreshTokenTtlSeconds;
  }

  private readonly refreshTtlSeconds: number;

  /** Redirects to the IdP (authorization code + PKCE S256, state, nonce); `login_hint` is passed on. */
  @Public()
  @ApiContract({
    summary: "Start an OIDC sign-in: redirects to the org's identity provider (code + PKCE S256, state, nonce)",
    query: OidcStartQuerySchema,
    responses: { 302: null },
    problems: ['oidc_provider_unavailable', 'oidc_issuer_mismatch'],
  })
  @Get('start')
  async start(
    @Param('org') org: string,
    @Query() query: Record<string, unknown>,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    const { login_hint: loginHint, session } = stringQuery(query, new Set(['login_hint', 'session']));
    if (session !== undefined && session !== 'cookie') throw badQuery('/session', 'cookie, or leave it out');
    // eslint-disable-next-line no-control-regex -- refusing control characters is the point
    if (loginHint !== undefined && (loginHint.length > 320 || /[\u0000-\u001f\u007f]/.test(loginHint)))
      throw badQuery('/login_hint', 'at most 320 printable characters');
    const { location, cookie } = await this.signIn.start(org, { loginHint, session }, this.secure(req));
    res.setHeader('Cache-Control', 'no-store');
    res.append('Set-Cookie', cookie);
    res.redirect(302, location);
  }

  /**
   * The IdP's redirect back: tokens of an ordinary Custodian session (JSON), or for a sign-in started
   * with `session=cookie` the refresh cookie and a 303 to the console; a refusal is its problem code.
   */
  @Public()
  @ApiContract({
    summary: "The identity provider's redirect back: an ordinary session's tokens",
    query: OidcCallbackQuerySchema,
    responses: { 200: TokenAnswer, 303: null },
    problems: [
      'oidc_state_invalid',
      'oidc_provider_error',
      'oidc_provider_unavailable',
      'oidc_nonce_mismatch',
      'oidc_issuer_mismatch',
      'oidc_audience_mismatch',
      'oidc_signature_invalid',
      'oidc_token_expired',
      'oidc_token_invalid',
      'oidc_email_not_verified',
      'oidc_email_domain_not_allowed',
      'oidc_link_not_allowed',
      'oidc_user_not_provisioned',
      'forbidden',
    ],
  })
  @Get('callback')
  async callback(
    @Param('org') org: string,
    @Query() query: Record<string, unknown>,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    // The login state is spent whatever happens next; nothing of this answer may be cached.
    res.append('Set-Cookie', this.signIn.clearCookie(org, this.secure(req)));
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Pragma', 'no-cache');
    const { tokens, session, interaction } = await this.signIn.callback(org, stringQuery(query, CALLBACK_PARAMS), req.get('cookie'));
    if (interaction !== undefined) {
      // Started from the OAuth consent page: the session goes back to that interaction only (its uid,
      // never a URL from the request), in a sealed cookie on that page's path; the page then asks for
      // consent. The tokens themselves never leave: the grant is bound to the session by id.
      const claims = decodeJwt(tokens.accessToken) as { sub: string; sid: string };
      res.append(
        'Set-Cookie',
        this.signIn.handoffCookie({ uid: interaction, org: tokens.orgId, userId: claims.sub, sessionId: claims.sid }, this.secure(req)),
      );
      res.redirect(303, `${this.configs.publicUrl()}/oauth/interaction/${encodeURIComponent(interaction)}`);
      return;
    }
    if (session === 'cookie') {
      // A browser session (the console): the refresh token goes into its httpOnly cookie, never into
      // the URL; the console resumes the session from it (POST auth/refresh) after this redirect.
      setRefreshCookie(req, res, tokens.refreshToken, this.refreshTtlSeconds);
      res.redirect(303, this.configs.consoleUrl());
      return;
    }
    res.status(200).json(tokens);
  }

  /** OIDC Back-Channel Logout: a form post with `logout_token`; 200 when the sessions are ended, 400 otherwise. */
  @Public()
  @ApiContract({
    summary: 'OIDC Back-Channel Logout: the identity provider posts a logout token; the sessions it names end',
    bodyType: 'application/x-www-form-urlencoded',
    responses: { 200: null },
    problems: ['bad_request', 'unsupported_media_type', 'payload_too_large', 'oidc_provider_unavailable'],
  })
  @Post('backchannel-logout')
  @HttpCode(200)
  @NoStore()
  async backchannelLogout(@Param('org') org: string, @Req() req: Request): Promise<void> {
    const form = await readForm(req);
    await this.backchannel.logout(org, form.get('logout_token') ?? undefined);
  }

  /** The public key of the private_key_jwt client credential, for IdPs that fetch a JWKS URL. */
  @Public()
  @ApiContract({
    summary: "The public key of the connection's private_key_jwt client credential (JWKS)",
    responses: { 200: OidcJwksSchema },
  })
  @Get('jwks')
  async jwks(@Param('org') org: string): Promise<{ keys: unknown[] }> {
    const conn = await this.signIn.connection(org);
    if (conn.clientAuth !== 'private_key_jwt') throw CustodianException.notFound('This connection uses no private key');
    const key = await this.configs.privateKeyOf(conn);
    if (!key) throw CustodianException.notFound('This connection uses no private key');
    return { keys: [publicJwk(key, (conn.privateKeyAlg ?? 'RS256') as PrivateKeyAlg)] };
  }

  private secure(req: Request): boolean {
    return req.secure || this.configs.urls('x').redirectUri.startsWith('https:');
  }
}

/** An application/x-www-form-urlencoded body, bounded (R8); anything else is a 4xx. */
async function readForm(req: Request): Promise<URLSearchParams> {
  if (!(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    throw new CustodianException(ErrorCode.UnsupportedMediaType, 'Expected a form post (application/x-www-form-urlencoded)');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new CustodianException(ErrorCode.PayloadTooLarge, 'Form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
