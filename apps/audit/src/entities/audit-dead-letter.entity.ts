import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * An event the store could not take (A9), kept whole for an operator and counted by an alert
 * metric. Append-only except for `resolved_at`, which an operator sets once (triggers, ADR 0010).
 */
@Entity({ name: 'audit_dead_letter' })
export class AuditDeadLetterEntity {
  @PrimaryColumn({ name: 'message_id', type: 'varchar', length: 128 })
  messageId!: string;

  /** The event as received: JSON text, or base64 when the bytes are not text (`payload_encoding`). */
  @Column({ type: 'text' })
  payload!: string;

  @Column({ name: 'payload_encoding', type: 'varchar', length: 8, default: 'text' })
  payloadEncoding!: 'text' | 'base64';

  /** `data_error` (the database refused it), `retries` (the store failed it repeatedly), `invalid` (broke its contract), `exhausted` (the bus gave up). */
  @Column({ type: 'varchar', length: 16 })
  reason!: string;

  @Column({ type: 'text' })
  error!: string;

  @Column({ type: 'integer' })
  deliveries!: number;

  /** The subject it arrived on and its position in the stream, when the bus said. */
  @Column({ type: 'varchar', length: 128, nullable: true })
  subject!: string | null;

  @Column({ name: 'stream_seq', type: 'bigint', nullable: true })
  streamSeq!: string | null;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;

  @Column({ name: 'resolved_at', type: 'timestamptz', nullable: true })
  resolvedAt!: Date | null;
}
