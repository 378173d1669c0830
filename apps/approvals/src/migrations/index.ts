import { Init1795311847698 } from './1795311847698-init';
import { ApprovalPolicies1795319867947 } from './1795319867947-approval-policies';
import { PendingActions1796189644046 } from './1796189644046-pending-actions';
import { InboxWaitingIndex1796205468279 } from './1796205468279-inbox-waiting-index';

/** In order; never edit one that has shipped — add a new one (scripts/generate-migration.ts). */
export const SERVICE_MIGRATIONS = [
  Init1795311847698,
  ApprovalPolicies1795319867947,
  PendingActions1796189644046,
  InboxWaitingIndex1796205468279,
];
