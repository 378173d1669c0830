import { Body, Controller, Get, HttpCode, Inject, Post, Req } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { API_PREFIX, Public, RequirePolicy, assertValid } from '@custodian/platform';
import type { Request } from 'express';
import { LoginRequestSchema } from './auth.schemas';
import { AuthService, type TokenResponse } from './auth.service';

type AuthedRequest = Request & { principal: PrincipalSnapshot };

@Controller(`${API_PREFIX}/auth`)
export class AuthController {
  constructor(@Inject(AuthService) private readonly auth: AuthService) {}

  @Public()
  @Post('login')
  @HttpCode(200)
  login(@Body() body: unknown): Promise<TokenResponse> {
    return this.auth.login(assertValid(LoginRequestSchema, body, { what: 'login request' }));
  }

  @RequirePolicy({ reason: 'anyone signed in may end their own session' })
  @Post('logout')
  @HttpCode(204)
  async logout(@Req() req: AuthedRequest): Promise<void> {
    await this.auth.logout(req.principal);
  }

  @RequirePolicy({ reason: 'anyone signed in may read who they are' })
  @Get('me')
  me(@Req() req: AuthedRequest): PrincipalSnapshot {
    return req.principal;
  }
}
