import type { Provider } from '@nestjs/common';
import { CONFIG, SettingsCipher, SettingsStore, type CustodianConfig } from '@custodian/platform';
import { BackchannelLogoutService } from './backchannel-logout.service';
import { OidcClientCache } from './oidc-client';
import { OIDC_CLIENT_CACHE, OIDC_SETTINGS, OIDC_SETTINGS_STORE, OidcConfigService } from './oidc-config.service';
import { LoginStateSealer } from './oidc-login-state';
import { OidcProvisioningService } from './oidc-provisioning.service';
import { LOGIN_STATE_SEALER, OidcSessionIssuer, OidcSignInService } from './oidc-sign-in.service';
import { OidcConfigController, OidcDiscoveryController, OidcSignInController } from './oidc.controller';

/** OIDC sign-in per org (docs/sso.md), added to the identity module. */
export const FEDERATION_CONTROLLERS = [OidcConfigController, OidcDiscoveryController, OidcSignInController];

export const FEDERATION_PROVIDERS: Provider[] = [
  {
    provide: OIDC_SETTINGS_STORE,
    inject: [CONFIG],
    useFactory: (config: CustodianConfig) =>
      new SettingsStore(
        OIDC_SETTINGS,
        config.secrets.masterKey ? new SettingsCipher(config.secrets.masterKey) : undefined,
        config.agentRuntime.references,
      ),
  },
  { provide: OIDC_CLIENT_CACHE, useFactory: () => new OidcClientCache() },
  {
    provide: LOGIN_STATE_SEALER,
    inject: [CONFIG],
    useFactory: (config: CustodianConfig) => {
      if (!config.secrets.masterKey) throw new Error('OIDC sign-in needs a master key (CUSTODIAN_MASTER_KEY)');
      return new LoginStateSealer(config.secrets.masterKey);
    },
  },
  OidcConfigService,
  OidcProvisioningService,
  OidcSessionIssuer,
  OidcSignInService,
  BackchannelLogoutService,
];
