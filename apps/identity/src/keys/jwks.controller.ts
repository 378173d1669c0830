import { Controller, Get, Header, Inject } from '@nestjs/common';
import type { Jwks } from '@custodian/contracts';
import { Public } from '@custodian/platform';
import { SigningKeyService } from './signing-key.service';

@Controller('.well-known')
export class JwksController {
  constructor(@Inject(SigningKeyService) private readonly keys: SigningKeyService) {}

  /** Public keys only; lets external verifiers check Custodian tokens. */
  @Public()
  @Get('jwks.json')
  @Header('Cache-Control', 'public, max-age=60')
  jwks(): Promise<Jwks> {
    return this.keys.jwks();
  }
}
