import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Req, Res } from '@nestjs/common';
import { ErrorCode, type PrincipalSnapshot, PrincipalSnapshotSchema } from '@custodian/contracts';
import {
  API_PREFIX,
  CONFIG,
  CustodianException,
  Public,
  RequirePolicy,
  assertValid,
  type CustodianConfig,
  ApiContract,
} from '@custodian/platform';
import type { Request, Response } from 'express';
import { idParam, type AuthedRequest } from '../directory/directory.http';
import { ChangeOwnPasswordSchema } from '../directory/directory.schemas';
import { CookieRefreshRequestSchema, LoginRequestSchema, RefreshRequestSchema } from './auth.schemas';
import { AuthService, type TokenResponse } from './auth.service';
import { NoStore } from './no-store';
import { CSRF_HEADER, assertSameOriginBrowser, clearRefreshCookie, readRefreshCookie, setRefreshCookie } from './refresh-cookie';
import { SessionService, type SessionView } from './session.service';
import { TokenExchangeRequestSchema, TokenExchangeService, type TokenExchangeResponse } from './token-exchange.service';
import { Items, Session, TokenAnswer, TokenExchangeAnswer } from '../identity.api-schemas';
import { Type } from '@sinclair/typebox';

/** A browser session's token answer: the refresh token is in the cookie, not here. */
export type BrowserTokenResponse = Omit<TokenResponse, 'refreshToken'>;

@Controller(`${API_PREFIX}/auth`)
export class AuthController {
  constructor(
    @Inject(AuthService) private readonly auth: AuthService,
    @Inject(SessionService) private readonly sessions: SessionService,
    @Inject(TokenExchangeService) private readonly exchange: TokenExchangeService,
    @Inject(CONFIG) private readonly config: CustodianConfig,
  ) {}

  /**
   * With `session: "cookie"` (browsers: the console) the refresh token is set as an httpOnly cookie
   * and left out of the body; that needs the CSRF header and the server's own Origin.
   */
  @Public()
  @ApiContract({
    summary: 'Sign in with email and password',
    body: LoginRequestSchema,
    responses: { 200: TokenAnswer },
    problems: ['invalid_credentials', 'rate_limited', 'forbidden', 'password_login_disabled'],
  })
  @Post('login')
  @HttpCode(200)
  @NoStore()
  async login(
    @Body() body: unknown,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<TokenResponse | BrowserTokenResponse> {
    const { session, ...input } = assertValid(LoginRequestSchema, body, { what: 'login request' });
    if (session !== 'cookie') return this.auth.login(input);
    assertSameOriginBrowser(req);
    return this.toCookie(req, res, await this.auth.login(input));
  }

  /**
   * Public: the refresh token is the credential (rotated on every use, I6) — in the body, or, when the
   * body is empty, in the refresh cookie (then with the CSRF header and the server's own Origin).
   */
  @Public()
  @ApiContract({
    summary: 'Rotate a refresh token (in the body, or the cookie when the body is empty)',
    body: RefreshRequestSchema,
    responses: { 200: TokenAnswer },
    problems: ['unauthenticated', 'forbidden'],
  })
  @Post('refresh')
  @HttpCode(200)
  @NoStore()
  async refresh(
    @Body() body: unknown,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<TokenResponse | BrowserTokenResponse> {
    const empty = body === undefined || body === null || (typeof body === 'object' && Object.keys(body).length === 0);
    // A browser's refresh: an empty body with the cookie or the CSRF header. Anything else is the body form.
    if (empty && (req.get('cookie') !== undefined || req.get(CSRF_HEADER) !== undefined)) {
      assertValid(CookieRefreshRequestSchema, body ?? {}, { what: 'refresh request' });
      assertSameOriginBrowser(req);
      const token = readRefreshCookie(req);
      if (!token) throw new CustodianException(ErrorCode.Unauthenticated, 'No refresh cookie');
      try {
        return this.toCookie(req, res, await this.auth.refresh(token));
      } catch (error) {
        // A refused cookie (revoked, reused, expired) is removed from the browser.
        if (error instanceof CustodianException && error.code === ErrorCode.Unauthenticated) clearRefreshCookie(req, res);
        throw error;
      }
    }
    return this.auth.refresh(assertValid(RefreshRequestSchema, body, { what: 'refresh request' }).refreshToken);
  }

  /** Public: the subject token in the body is the credential; the exchange checks agent_access itself. */
  @Public()
  @ApiContract({
    summary: 'RFC 8693 token exchange: a delegated token for an agent',
    body: TokenExchangeRequestSchema,
    responses: { 200: TokenExchangeAnswer },
    problems: ['unauthenticated', 'forbidden'],
  })
  @Post('token-exchange')
  @HttpCode(200)
  @NoStore()
  tokenExchange(@Body() body: unknown): Promise<TokenExchangeResponse> {
    return this.exchange.exchange(assertValid(TokenExchangeRequestSchema, body, { what: 'token exchange request' }));
  }

  /** Refused to agents: their token is a stateless JWT tied to the user's session, so logout would end the user's session. */
  @RequirePolicy({ reason: 'anyone signed in may end their own session', credentialAdmin: true })
  @ApiContract({ responses: { 204: null } })
  @Post('logout')
  @HttpCode(204)
  async logout(@Req() req: AuthedRequest, @Res({ passthrough: true }) res: Response): Promise<void> {
    await this.auth.logout(req.principal);
    // A browser session's cookie goes with it (harmless for clients that never had one).
    if (readRefreshCookie(req)) clearRefreshCookie(req, res);
  }

  @RequirePolicy({ reason: 'anyone signed in may end all their own sessions', credentialAdmin: true })
  @ApiContract({ responses: { 200: Type.Object({ revokedSessions: Type.Integer() }) } })
  @Post('logout-all')
  @HttpCode(200)
  async logoutAll(@Req() req: AuthedRequest): Promise<{ revokedSessions: number }> {
    return { revokedSessions: await this.sessions.logoutAll(req.principal) };
  }

  @RequirePolicy({ reason: 'anyone signed in may change their own password (proving the current one)', credentialAdmin: true })
  @ApiContract({ body: ChangeOwnPasswordSchema, responses: { 204: null }, problems: ['invalid_credentials'] })
  @Post('password')
  @HttpCode(204)
  async changePassword(@Req() req: AuthedRequest, @Body() body: unknown): Promise<void> {
    const input = assertValid(ChangeOwnPasswordSchema, body, { what: 'password change' });
    await this.auth.changeOwnPassword(req.principal, input.currentPassword, input.newPassword);
  }

  @RequirePolicy({ reason: 'anyone signed in may read who they are' })
  @ApiContract({
    summary: 'Who the caller is: the principal snapshot every service decides on',
    responses: { 200: PrincipalSnapshotSchema },
  })
  @Get('me')
  me(@Req() req: AuthedRequest): PrincipalSnapshot {
    return req.principal;
  }

  private toCookie(req: Request, res: Response, tokens: TokenResponse): BrowserTokenResponse {
    const { refreshToken, ...rest } = tokens;
    setRefreshCookie(req, res, refreshToken, this.config.auth.refreshTokenTtlSeconds);
    return rest;
  }
}

/** The caller's own sessions (refresh families). */
@Controller(`${API_PREFIX}/sessions`)
export class SessionsController {
  constructor(@Inject(SessionService) private readonly sessions: SessionService) {}

  @RequirePolicy({ reason: 'anyone signed in may list their own sessions' })
  @ApiContract({ responses: { 200: Items(Session) } })
  @Get()
  async list(@Req() req: AuthedRequest): Promise<{ items: SessionView[]; nextCursor: null }> {
    return { items: await this.sessions.list(req.principal), nextCursor: null };
  }

  @RequirePolicy({
    reason: 'anyone signed in may revoke their own sessions; other users\u2019 ids are not found',
    credentialAdmin: true,
  })
  @ApiContract({ responses: { 204: null } })
  @Delete(':id')
  @HttpCode(204)
  async revoke(@Req() req: AuthedRequest, @Param('id') id: string): Promise<void> {
    await this.sessions.revokeOwn(req.principal, idParam(id, 'Session'));
  }
}
