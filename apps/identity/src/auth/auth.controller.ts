import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Req } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { API_PREFIX, Public, RequirePolicy, assertValid } from '@custodian/platform';
import { idParam, type AuthedRequest } from '../directory/directory.http';
import { ChangeOwnPasswordSchema } from '../directory/directory.schemas';
import { LoginRequestSchema, RefreshRequestSchema } from './auth.schemas';
import { AuthService, type TokenResponse } from './auth.service';
import { NoStore } from './no-store';
import { SessionService, type SessionView } from './session.service';
import { TokenExchangeRequestSchema, TokenExchangeService, type TokenExchangeResponse } from './token-exchange.service';

@Controller(`${API_PREFIX}/auth`)
export class AuthController {
  constructor(
    @Inject(AuthService) private readonly auth: AuthService,
    @Inject(SessionService) private readonly sessions: SessionService,
    @Inject(TokenExchangeService) private readonly exchange: TokenExchangeService,
  ) {}

  @Public()
  @Post('login')
  @HttpCode(200)
  @NoStore()
  login(@Body() body: unknown): Promise<TokenResponse> {
    return this.auth.login(assertValid(LoginRequestSchema, body, { what: 'login request' }));
  }

  /** Public: the refresh token in the body is the credential (rotated on every use, I6). */
  @Public()
  @Post('refresh')
  @HttpCode(200)
  @NoStore()
  refresh(@Body() body: unknown): Promise<TokenResponse> {
    return this.auth.refresh(assertValid(RefreshRequestSchema, body, { what: 'refresh request' }).refreshToken);
  }

  /** Public: the subject token in the body is the credential; the exchange checks agent_access itself. */
  @Public()
  @Post('token-exchange')
  @HttpCode(200)
  @NoStore()
  tokenExchange(@Body() body: unknown): Promise<TokenExchangeResponse> {
    return this.exchange.exchange(assertValid(TokenExchangeRequestSchema, body, { what: 'token exchange request' }));
  }

  /** Refused to agents: their token is a stateless JWT tied to the user's session, so logout would end the user's session. */
  @RequirePolicy({ reason: 'anyone signed in may end their own session', credentialAdmin: true })
  @Post('logout')
  @HttpCode(204)
  async logout(@Req() req: AuthedRequest): Promise<void> {
    await this.auth.logout(req.principal);
  }

  @RequirePolicy({ reason: 'anyone signed in may end all their own sessions', credentialAdmin: true })
  @Post('logout-all')
  @HttpCode(200)
  async logoutAll(@Req() req: AuthedRequest): Promise<{ revokedSessions: number }> {
    return { revokedSessions: await this.sessions.logoutAll(req.principal) };
  }

  @RequirePolicy({ reason: 'anyone signed in may change their own password (proving the current one)', credentialAdmin: true })
  @Post('password')
  @HttpCode(204)
  async changePassword(@Req() req: AuthedRequest, @Body() body: unknown): Promise<void> {
    const input = assertValid(ChangeOwnPasswordSchema, body, { what: 'password change' });
    await this.auth.changeOwnPassword(req.principal, input.currentPassword, input.newPassword);
  }

  @RequirePolicy({ reason: 'anyone signed in may read who they are' })
  @Get('me')
  me(@Req() req: AuthedRequest): PrincipalSnapshot {
    return req.principal;
  }
}

/** The caller's own sessions (refresh families). */
@Controller(`${API_PREFIX}/sessions`)
export class SessionsController {
  constructor(@Inject(SessionService) private readonly sessions: SessionService) {}

  @RequirePolicy({ reason: 'anyone signed in may list their own sessions' })
  @Get()
  async list(@Req() req: AuthedRequest): Promise<{ items: SessionView[] }> {
    return { items: await this.sessions.list(req.principal) };
  }

  @RequirePolicy({
    reason: 'anyone signed in may revoke their own sessions; other users\u2019 ids are not found',
    credentialAdmin: true,
  })
  @Delete(':id')
  @HttpCode(204)
  async revoke(@Req() req: AuthedRequest, @Param('id') id: string): Promise<void> {
    await this.sessions.revokeOwn(req.principal, idParam(id, 'Session'));
  }
}
