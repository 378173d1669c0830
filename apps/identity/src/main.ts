import { runService } from '@custodian/platform';
import { IdentityModule } from './identity.module';

void runService('identity', IdentityModule);
