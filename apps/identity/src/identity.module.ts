import { Module } from '@nestjs/common';
import { CONFIG, ServiceDatabaseModule, type CustodianConfig } from '@custodian/platform';
import { AuthController } from './auth/auth.controller';
import { AuthService, PASSWORD_HASHER } from './auth/auth.service';
import { PasswordHasher } from './auth/password-hasher';
import { BootstrapService } from './bootstrap/bootstrap.service';
import { SERVICE_ENTITIES } from './entities';
import { IdentityBusHandlers } from './identity-bus.handlers';
import { JwksController } from './keys/jwks.controller';
import { KeyVault } from './keys/key-vault';
import { KEY_VAULT, SigningKeyService } from './keys/signing-key.service';
import { SERVICE_MIGRATIONS } from './migrations';

/** Users, organizations, sessions, tokens and keys (issue #4 completes the directory). */
@Module({
  imports: [ServiceDatabaseModule.forService({ service: 'identity', entities: SERVICE_ENTITIES, migrations: SERVICE_MIGRATIONS })],
  controllers: [AuthController, JwksController],
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
    SigningKeyService,
    AuthService,
    BootstrapService,
    IdentityBusHandlers,
  ],
})
export class IdentityModule {}
