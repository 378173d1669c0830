import { Column, Entity, PrimaryColumn } from 'typeorm';

/** An event the store could not write (A9): kept whole for an operator, counted by an alert metric. */
@Entity({ name: 'audit_dead_letter' })
export class AuditDeadLetterEntity {
  @PrimaryColumn({ name: 'message_id', type: 'varchar', length: 128 })
  messageId!: string;

  @Column({ type: 'text' })
  payload!: string;

  @Column({ type: 'text' })
  error!: string;

  @Column({ type: 'integer' })
  deliveries!: number;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;
}
