import { Module } from '@nestjs/common';
import { ServiceDatabaseModule } from '@custodian/platform';
import { SERVICE_ENTITIES } from './entities';
import { SERVICE_MIGRATIONS } from './migrations';

/** MCP endpoint and governed tool registry for LLM agents (its own issue builds it out). */
@Module({
  imports: [ServiceDatabaseModule.forService({ service: 'agent-gateway', entities: SERVICE_ENTITIES, migrations: SERVICE_MIGRATIONS })],
})
export class AgentGatewayModule {}
