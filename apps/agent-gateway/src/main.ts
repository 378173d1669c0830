import { runService } from '@custodian/platform';
import { AgentGatewayModule } from './agent-gateway.module';

void runService('agent-gateway', AgentGatewayModule);
