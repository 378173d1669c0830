import { runServiceCommand } from '@custodian/platform';
import { AgentGatewayModule } from './agent-gateway.module';
import { SERVICE_MIGRATIONS } from './migrations';

// `main.js migrate` applies the migrations and exits; without it the service starts.
void runServiceCommand('agent-gateway', AgentGatewayModule, SERVICE_MIGRATIONS);
