import { runService } from '@custodian/platform';
import { ApprovalsModule } from './approvals.module';

void runService('approvals', ApprovalsModule);
