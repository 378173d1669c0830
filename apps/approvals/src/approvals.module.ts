import { Module } from '@nestjs/common';
import { ServiceDatabaseModule } from '@custodian/platform';
import { ApprovalsBusHandlers } from './approvals-bus.handlers';
import { SERVICE_ENTITIES } from './entities';
import { SERVICE_MIGRATIONS } from './migrations';
import { PendingActionApplier } from './pending-actions/pending-action-applier.service';
import { PendingActionBulk } from './pending-actions/pending-action-bulk.service';
import { PendingActionsController } from './pending-actions/pending-actions.controller';
import { PendingActionsService } from './pending-actions/pending-actions.service';
import { ApprovalPoliciesController } from './policies/approval-policies.controller';
import { ApprovalPoliciesService } from './policies/approval-policies.service';

/** The pending-action queue (filing, review with separation of duties, apply with re-check) and its approval policies. */
@Module({
  imports: [ServiceDatabaseModule.forService({ service: 'approvals', entities: SERVICE_ENTITIES, migrations: SERVICE_MIGRATIONS })],
  // The policies controller first: its static path must win over `approvals/:id`.
  controllers: [ApprovalPoliciesController, PendingActionsController],
  providers: [ApprovalPoliciesService, PendingActionsService, PendingActionApplier, PendingActionBulk, ApprovalsBusHandlers],
})
export class ApprovalsModule {}
