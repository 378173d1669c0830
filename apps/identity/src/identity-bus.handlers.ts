import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { GetJwks, GetPrincipalSnapshot } from '@custodian/contracts';
import { BUS, type Bus } from '@custodian/platform';
import { AuthService } from './auth/auth.service';
import { SigningKeyService } from './keys/signing-key.service';

/** What identity answers on the bus. */
@Injectable()
export class IdentityBusHandlers implements OnModuleInit {
  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(AuthService) private readonly auth: AuthService,
    @Inject(SigningKeyService) private readonly keys: SigningKeyService,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.bus.handle(GetJwks, () => this.keys.jwks());
    await this.bus.handle(GetPrincipalSnapshot, (req) => this.auth.snapshot(req));
  }
}
