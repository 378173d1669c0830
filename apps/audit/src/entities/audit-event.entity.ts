import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * One stored audit event; the primary key (the event id) makes redelivery idempotent.
 * The hash chain, immutability triggers and checkpoints come with issue #6.
 */
@Entity({ name: 'audit_event' })
@Index('audit_event_org_time_idx', ['orgId', 'occurredAt'])
export class AuditEventEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'org_id', type: 'uuid', nullable: true })
  orgId!: string | null;

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

  @Column({ type: 'jsonb' })
  event!: Record<string, unknown>;
}
