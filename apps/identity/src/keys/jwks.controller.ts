import { Controller, Get, Header, Inject } from '@nestjs/common';
import type { Jwks } from '@custodian/contracts';
import { Public, ApiContract, AnyObject } from '@custodian/platform';
import { SigningKeyService } from './signing-key.service';

@Controller('.well-known')
export class JwksController {
  constructor(@Inject(SigningKeyService) private readonly keys: SigningKeyService) {}

  /** Public keys only; lets external verifiers check Custodian tokens. */
  @Public()
  @ApiContract({ summary: 'The public keys that verify access tokens (RFC 7517)', responses: { 200: AnyObject } })
  @Get('jwks.json')
  @Header('Cache-Control', 'public, max-age=60')
  jwks(): Promise<Jwks> {
    return this.keys.jwks();
  }
}
