import { runServiceCommand } from '@custodian/platform';
import { IdentityModule } from './identity.module';
import { SERVICE_MIGRATIONS } from './migrations';

// `main.js migrate` applies the migrations and exits; without it the service starts.
void runServiceCommand('identity', IdentityModule, SERVICE_MIGRATIONS);
