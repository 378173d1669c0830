import type { Provider } from '@nestjs/common';
import { CONFIG, SettingsCipher, SettingsStore, type CustodianConfig } from '@custodian/platform';
import { ToolCatalogService } from '../tools/tool-catalog.service';
import { ToolExecutor } from '../tools/tool-executor.service';
import { ConversationExportService } from './conversation-export.service';
import { ConversationRunner } from './conversation-runner';
import { ConversationsController } from './conversations.controller';
import { GOVERNED_TOOLS, governedTools } from './governed-tools';
import { AgentProfilesController } from './profiles.controller';
import { AgentProfilesService } from './profiles.service';
import type { RuntimeConfig } from './runtime-config';
import { RUNTIME_CONFIG } from './runtime-config.token';
import { RUNTIME_SETTINGS, RUNTIME_SETTINGS_STORE } from './runtime-settings';
import { RuntimeSettingsController } from './settings.controller';
import { RuntimeSettingsService } from './settings.service';

/** The agent runtime's controllers, added to the gateway module beside the MCP ones. */
export const RUNTIME_CONTROLLERS = [RuntimeSettingsController, AgentProfilesController, ConversationsController];

/** The agent runtime's providers; the governed tools are the gateway's own catalog and executor. */
export const RUNTIME_PROVIDERS: Provider[] = [
  { provide: RUNTIME_CONFIG, inject: [CONFIG], useFactory: (config: CustodianConfig) => config.agentRuntime },
  {
    provide: RUNTIME_SETTINGS_STORE,
    inject: [CONFIG, RUNTIME_CONFIG],
    useFactory: (config: CustodianConfig, runtime: RuntimeConfig) =>
      new SettingsStore(
        RUNTIME_SETTINGS,
        config.secrets.masterKey ? new SettingsCipher(config.secrets.masterKey) : undefined,
        runtime.references,
      ),
  },
  { provide: GOVERNED_TOOLS, inject: [ToolCatalogService, ToolExecutor], useFactory: governedTools },
  ConversationRunner,
  ConversationExportService,
  RuntimeSettingsService,
  AgentProfilesService,
];
