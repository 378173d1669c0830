import { OutboxEntity } from '@custodian/platform';
import { ApprovalPolicyEntity } from './approval-policy.entity';
import { PendingActionCommentEntity } from './pending-action-comment.entity';
import { PendingActionDecisionEntity } from './pending-action-decision.entity';
import { PendingActionEntity } from './pending-action.entity';

export const SERVICE_ENTITIES = [
  OutboxEntity,
  ApprovalPolicyEntity,
  PendingActionEntity,
  PendingActionDecisionEntity,
  PendingActionCommentEntity,
];
