import { Module, type DynamicModule } from '@nestjs/common';
import { CONFIG, ServiceDatabaseModule, type CustodianConfig } from '@custodian/platform';
import { ApiKeysController } from './api-keys/api-keys.controller';
import { ApiKeysService } from './api-keys/api-keys.service';
import { AuthController, SessionsController } from './auth/auth.controller';
import { AuthService } from './auth/auth.service';
import { LoginThrottleService } from './auth/login-throttle.service';
import { PASSWORD_HASHER, PasswordHasher } from './auth/password-hasher';
import { PrincipalSnapshotService } from './auth/principal-snapshot.service';
import { SessionService } from './auth/session.service';
import { TokenExchangeService } from './auth/token-exchange.service';
import { BootstrapService } from './bootstrap/bootstrap.service';
import { BOOTSTRAP_BANNER, FirstStartBanner } from './bootstrap/first-start';
import { IdentityBundleService } from './bundles/identity-bundle.service';
import { GroupsController } from './directory/groups.controller';
import { InvitationsController } from './directory/invitations.controller';
import { OrgsController } from './directory/orgs.controller';
import { PermissionChangeBusHandler } from './directory/permission-change.handler';
import { PermissionChangeService } from './directory/permission-change.service';
import { PermissionSetsController } from './directory/permission-sets.controller';
import { RolesController } from './directory/roles.controller';
import { UsersController } from './directory/users.controller';
import { GroupsService } from './directory/groups.service';
import { InvitationsService } from './directory/invitations.service';
import { MembersService } from './directory/members.service';
import { PermissionSetsService } from './directory/permission-sets.service';
import { RolesService } from './directory/roles.service';
import { UsersService } from './directory/users.service';
import { SERVICE_ENTITIES } from './entities';
import { FEDERATION_CONTROLLERS, FEDERATION_PROVIDERS } from './federation/federation.providers';
import { IdentityEvents } from './events/identity-events.service';
import { IdentityBusHandlers } from './identity-bus.handlers';
import { JwksController } from './keys/jwks.controller';
import { KeyVault } from './keys/key-vault';
import { KEY_VAULT, SigningKeyService } from './keys/signing-key.service';
import { SigningKeysController } from './keys/signing-keys.controller';
import { SERVICE_MIGRATIONS } from './migrations';
import { OAUTH_SERVER_CONTROLLERS, OAUTH_SERVER_PROVIDERS } from './oauth-server/oauth-server.parts';
import { ScimController } from './scim/scim.controller';
import { ScimGroupsService } from './scim/scim-groups.service';
import { ScimUsersService } from './scim/scim-users.service';

/** Users, organizations, the directory (roles, groups, permission sets), sessions, tokens and keys. */
@Module({
  imports: [ServiceDatabaseModule.forService({ service: 'identity', entities: SERVICE_ENTITIES, migrations: SERVICE_MIGRATIONS })],
  controllers: [
    AuthController,
    SessionsController,
    JwksController,
    UsersController,
    OrgsController,
    InvitationsController,
    RolesController,
    GroupsController,
    PermissionSetsController,
    ApiKeysController,
    SigningKeysController,
    ScimController,
    ...FEDERATION_CONTROLLERS,
    ...OAUTH_SERVER_CONTROLLERS,
  ],
  providers: [
    {
      provide: KEY_VAULT,
      inject: [CONFIG],
      useFactory: (config: CustodianConfig) => {
        if (!config.secrets.masterKey) throw new Error('identity needs a master key (CUSTODIAN_MASTER_KEY)');
        return new KeyVault(config.secrets.masterKey);
      },
    },
    { provide: PASSWORD_HASHER, useFactory: () => new PasswordHasher() },
    IdentityEvents,
    SigningKeyService,
    SessionService,
    LoginThrottleService,
    PrincipalSnapshotService,
    AuthService,
    TokenExchangeService,
    MembersService,
    InvitationsService,
    UsersService,
    RolesService,
    GroupsService,
    PermissionSetsService,
    ApiKeysService,
    BootstrapService,
    { provide: FirstStartBanner, useExisting: BootstrapService },
    IdentityBundleService,
    IdentityBusHandlers,
    PermissionChangeService,
    PermissionChangeBusHandler,
    ScimUsersService,
    ScimGroupsService,
    ...FEDERATION_PROVIDERS,
    ...OAUTH_SERVER_PROVIDERS,
  ],
})
export class IdentityModule {
  /** The same module, with the first-start banner held until the host prints it (all-in-one demo). */
  static holdingBootstrapBanner(): DynamicModule {
    return { module: IdentityModule, providers: [{ provide: BOOTSTRAP_BANNER, useValue: { hold: true } }] };
  }
}

// The composition root may use these (it imports only *.module.ts files, ADR 0003).
export { FirstStartBanner, type FirstStart } from './bootstrap/first-start';
