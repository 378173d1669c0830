import { runServiceCommand } from '@custodian/platform';
import { ObjectsModule } from './objects.module';
import { SERVICE_MIGRATIONS } from './migrations';

// `main.js migrate` applies the migrations and exits; without it the service starts.
void runServiceCommand('objects', ObjectsModule, SERVICE_MIGRATIONS);
