import { Module } from '@nestjs/common';
import { BUS, CONFIG, LOGGER, ServiceDatabaseModule, type Bus, type CustodianConfig } from '@custodian/platform';
import type { Logger } from 'pino';
import { AgentToolsController } from './admin/agent-tools.controller';
import { GatewayAudit } from './audit/gateway-audit.service';
import { McpAuthenticator } from './auth/mcp-authenticator';
import { ProtectedResourceController } from './auth/protected-resource.controller';
import { SERVICE_ENTITIES } from './entities';
import { McpController } from './mcp/mcp.controller';
import { McpHandlers } from './mcp/mcp-handlers';
import { McpSessions } from './mcp/mcp-sessions.service';
import { SERVICE_MIGRATIONS } from './migrations';
import { RUNTIME_CONTROLLERS, RUNTIME_PROVIDERS } from './runtime/runtime.providers';
import { ToolCatalogService } from './tools/tool-catalog.service';
import { ToolExecutor } from './tools/tool-executor.service';

/**
 * The agent gateway: `/mcp` (MCP Streamable HTTP) with the governed tools, the RFC 9728 metadata,
 * and `GET /api/v1/agent/tools`. It owns no business data: reads go to objects, proposals to
 * approvals, both over the bus with the caller's principal snapshot (docs/agent-gateway.md).
 */
@Module({
  imports: [ServiceDatabaseModule.forService({ service: 'agent-gateway', entities: SERVICE_ENTITIES, migrations: SERVICE_MIGRATIONS })],
  controllers: [McpController, ProtectedResourceController, AgentToolsController, ...RUNTIME_CONTROLLERS],
  providers: [
    {
      provide: McpAuthenticator,
      inject: [BUS, CONFIG, LOGGER],
      useFactory: async (bus: Bus, config: CustodianConfig, logger: Logger) => {
        const auth = new McpAuthenticator(bus, config, logger);
        await auth.start();
        return auth;
      },
    },
    GatewayAudit,
    ToolCatalogService,
    ToolExecutor,
    McpHandlers,
    McpSessions,
    ...RUNTIME_PROVIDERS,
  ],
})
export class AgentGatewayModule {}
