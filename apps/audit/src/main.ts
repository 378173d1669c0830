import { runServiceCommand } from '@custodian/platform';
import { AuditModule } from './audit.module';
import { SERVICE_MIGRATIONS } from './migrations';

// `main.js migrate` applies the migrations and exits; without it the service starts.
void runServiceCommand('audit', AuditModule, SERVICE_MIGRATIONS);
