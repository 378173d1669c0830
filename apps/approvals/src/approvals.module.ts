import { Module } from '@nestjs/common';
import { ServiceDatabaseModule } from '@custodian/platform';
import { ApprovalsBusHandlers } from './approvals-bus.handlers';
import { SERVICE_ENTITIES } from './entities';
import { SERVICE_MIGRATIONS } from './migrations';
import { ApprovalPoliciesController } from './policies/approval-policies.controller';
import { ApprovalPoliciesService } from './policies/approval-policies.service';

/** Pending-action queue with review and separation of duties; so far its approval policies (bundles). */
@Module({
  imports: [ServiceDatabaseModule.forService({ service: 'approvals', entities: SERVICE_ENTITIES, migrations: SERVICE_MIGRATIONS })],
  controllers: [ApprovalPoliciesController],
  providers: [ApprovalPoliciesService, ApprovalsBusHandlers],
})
export class ApprovalsModule {}
