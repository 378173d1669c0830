import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { ApplyIdentityBundle, AuthenticateApiKey, FindDirectoryEntry, GetJwks, GetPrincipalSnapshot } from '@custodian/contracts';
import { BUS, type Bus } from '@custodian/platform';
import { ApiKeysService } from './api-keys/api-keys.service';
import { PrincipalSnapshotService } from './auth/principal-snapshot.service';
import { IdentityBundleService } from './bundles/identity-bundle.service';
import { MembersService } from './directory/members.service';
import { SigningKeyService } from './keys/signing-key.service';

/** What identity answers on the bus. */
@Injectable()
export class IdentityBusHandlers implements OnModuleInit {
  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(PrincipalSnapshotService) private readonly snapshots: PrincipalSnapshotService,
    @Inject(ApiKeysService) private readonly apiKeys: ApiKeysService,
    @Inject(SigningKeyService) private readonly keys: SigningKeyService,
    @Inject(IdentityBundleService) private readonly bundles: IdentityBundleService,
    @Inject(MembersService) private readonly members: MembersService,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.bus.handle(GetJwks, () => this.keys.jwks());
    await this.bus.handle(GetPrincipalSnapshot, (req) => this.snapshots.build(req));
    await this.bus.handle(AuthenticateApiKey, (req) => this.apiKeys.authenticate(req.key));
    await this.bus.handle(ApplyIdentityBundle, (req) => this.bundles.apply(req));
    await this.bus.handle(FindDirectoryEntry, async (req) => ({ exists: await this.members.entryExists(req.orgId, req.type, req.id) }));
  }
}
