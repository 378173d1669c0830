import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * One stored audit event, a link in its organization's hash chain. The primary key (the event
 * id) makes redelivery idempotent; (chain_id, seq) is unique, so a chain has no forks. Rows are
 * never updated; the only DELETE a trigger lets through is the archive move (a verbatim copy
 * must already be in audit_event_archive). See docs/audit.md.
 */
@Entity({ name: 'audit_event' })
@Index('audit_event_org_time_idx', ['orgId', 'occurredAt'])
@Index('audit_event_chain_seq_uq', ['chainId', 'seq'], { unique: true })
@Index('audit_event_chain_action_idx', ['chainId', 'action', 'seq'])
@Index('audit_event_chain_actor_idx', ['chainId', 'actorUserId', 'seq'])
@Index('audit_event_chain_target_idx', ['chainId', 'targetType', 'targetId', 'seq'])
export class AuditEventEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'org_id', type: 'uuid', nullable: true })
  orgId!: string | null;

  /** org_id, or the all-zero uuid for events without an organization. */
  @Column({ name: 'chain_id', type: 'uuid' })
  chainId!: string;

  @Column({ type: 'bigint' })
  seq!: string;

  @Column({ name: 'prev_hash', type: 'char', length: 64 })
  prevHash!: string;

  @Column({ name: 'row_hash', type: 'char', length: 64 })
  rowHash!: string;

  @Column({ name: 'occurred_at', type: 'timestamptz' })
  occurredAt!: Date;

  @Column({ name: 'received_at', type: 'timestamptz', default: () => 'now()' })
  receivedAt!: Date;

  @Column({ type: 'varchar', length: 32 })
  service!: string;

  @Column({ type: 'varchar', length: 96 })
  action!: string;

  @Column({ type: 'varchar', length: 16 })
  outcome!: string;

  @Column({ name: 'actor_user_id', type: 'uuid', nullable: true })
  actorUserId!: string | null;

  @Column({ name: 'target_type', type: 'varchar', length: 64, nullable: true })
  targetType!: string | null;

  @Column({ name: 'target_id', type: 'varchar', length: 128, nullable: true })
  targetId!: string | null;

  /** The event exactly as hashed (after control characters were encoded). */
  @Column({ type: 'jsonb' })
  event!: Record<string, unknown>;
}
