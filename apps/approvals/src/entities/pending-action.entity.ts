import type { PendingActionKind, PendingActionState, ProposalContext, Proposer } from '@custodian/contracts';
import { Check, Column, CreateDateColumn, Entity, Index, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/** A proposed change waiting for (or past) human review; its state moves only forward (docs/approvals.md). */
@Entity({ name: 'pending_action' })
@Check(
  'pending_action_state',
  `"state" IN ('pending', 'approved', 'applied', 'stale', 'forbidden', 'failed', 'rejected', 'cancelled', 'expired')`,
)
@Index('pending_action_org_seq', ['orgId', 'seq'])
@Index('pending_action_org_state_seq', ['orgId', 'state', 'seq'])
@Index('pending_action_org_requester_seq', ['orgId', 'requesterUserId', 'seq'])
// "Waiting for me": the newest pending actions of one approver capability (docs/approvals.md, Performance).
@Index('pending_action_waiting', ['orgId', 'approverCapability', 'seq'], { where: `"state" = 'pending'` })
@Index('pending_action_open_expiry', ['expiresAt'], { where: `"state" = 'pending'` })
@Index('pending_action_to_apply', ['updatedAt'], { where: `"state" = 'approved'` })
export class PendingActionEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  /** Keyset order for the inbox: newest first, stable under concurrent filing. */
  @Column({ type: 'bigint', generated: 'increment' })
  seq!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @Column({ type: 'varchar', length: 32 })
  kind!: PendingActionKind;

  @Column({ type: 'varchar', length: 16 })
  state!: PendingActionState;

  /** Bumped whenever what reviewers see changes; approving names the revision seen (If-Match). */
  @Column({ type: 'integer', default: 1 })
  revision!: number;

  @Column({ name: 'requester_user_id', type: 'uuid' })
  requesterUserId!: string;

  /** The user, the credential used and the agent with its delegation. */
  @Column({ type: 'jsonb' })
  requester!: Proposer;

  @Column({ name: 'agent_client_id', type: 'varchar', length: 128, nullable: true })
  agentClientId!: string | null;

  @Column({ name: 'object_name', type: 'varchar', length: 64 })
  objectName!: string;

  @Column({ name: 'record_id', type: 'uuid', nullable: true })
  recordId!: string | null;

  /** action.run: the declared action (its values, as approved, are in `values`). */
  @Column({ name: 'action_name', type: 'varchar', length: 128, nullable: true })
  actionName!: string | null;

  /** The record's version the diff was computed on (update / delete / action), or the definition's (metadata). */
  @Column({ name: 'expected_version', type: 'integer', nullable: true })
  expectedVersion!: number | null;

  @Column({ type: 'jsonb' })
  values!: Record<string, unknown>;

  /**
   * What objects' dry-run computed at filing: a field diff limited to what the requester could read
   * (record kinds), or a definition diff (metadata.change).
   */
  @Column({ type: 'jsonb' })
  diff!: Record<string, unknown>;

  @Column({ type: 'varchar', length: 2000 })
  justification!: string;

  @Column({ type: 'jsonb' })
  context!: ProposalContext;

  @Column({ name: 'policy_name', type: 'varchar', length: 128, nullable: true })
  policyName!: string | null;

  @Column({ name: 'approver_capability', type: 'varchar', length: 64 })
  approverCapability!: string;

  @Column({ name: 'required_approvals', type: 'integer' })
  requiredApprovals!: number;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;

  /** The apply's answer (code, message, version), or the reason of a rejection or cancellation. */
  @Column({ type: 'jsonb', nullable: true })
  outcome!: { code?: string; message?: string; version?: number | null } | null;

  @Column({ name: 'apply_attempts', type: 'integer', default: 0 })
  applyAttempts!: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
