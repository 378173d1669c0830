import type { PendingActionState } from '@custodian/contracts';

/** The forward-only graph; the database enforces the same graph with a trigger. */
export const TRANSITIONS: Readonly<Record<PendingActionState, readonly PendingActionState[]>> = {
  pending: ['approved', 'rejected', 'cancelled', 'expired'],
  approved: ['applied', 'stale', 'forbidden', 'failed'],
  applied: [],
  stale: [],
  forbidden: [],
  failed: [],
  rejected: [],
  cancelled: [],
  expired: [],
};

export function canTransition(from: PendingActionState, to: PendingActionState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function isFinal(state: PendingActionState): boolean {
  return TRANSITIONS[state].length === 0;
}

/** The audit action of entering a state: one event per transition, named in docs/audit-events.md. */
export function auditActionFor(to: PendingActionState): string {
  switch (to) {
    case 'stale':
    case 'forbidden':
    case 'failed':
      return 'approvals.action.failed';
    case 'pending':
      return 'approvals.action.requested';
    default:
      return `approvals.action.${to}`;
  }
}
