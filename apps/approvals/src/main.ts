import { runServiceCommand } from '@custodian/platform';
import { ApprovalsModule } from './approvals.module';
import { SERVICE_MIGRATIONS } from './migrations';

// `main.js migrate` applies the migrations and exits; without it the service starts.
void runServiceCommand('approvals', ApprovalsModule, SERVICE_MIGRATIONS);
