import { OutboxEntity } from '@custodian/platform';
import { ApprovalPolicyEntity } from './approval-policy.entity';

export const SERVICE_ENTITIES = [OutboxEntity, ApprovalPolicyEntity];
