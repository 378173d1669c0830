import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * Archive storage: rows moved out of audit_event by POST audit/archive, verbatim (same seq and
 * hashes), so the chain verifies across both tables. Insert-only, like audit_event.
 */
@Entity({ name: 'audit_event_archive' })
@Index('audit_event_archive_chain_seq_uq', ['chainId', 'seq'], { unique: true })
export class AuditEventArchiveEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'org_id', type: 'uuid', nullable: true })
  orgId!: string | null;

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

  @Column({ name: 'received_at', type: 'timestamptz' })
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

  @Column({ type: 'jsonb' })
  event!: Record<string, unknown>;

  @Column({ name: 'archived_at', type: 'timestamptz', default: () => 'now()' })
  archivedAt!: Date;
}
