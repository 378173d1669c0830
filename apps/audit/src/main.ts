import { runService } from '@custodian/platform';
import { AuditModule } from './audit.module';

void runService('audit', AuditModule);
