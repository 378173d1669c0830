import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/**
 * F1: the outcome of a POST with an Idempotency-Key, stored in the write's own transaction, so a
 * retry after a crash between commit and reply gets the same answer (and no second audit event).
 */
@Entity({ name: 'idempotency_key' })
export class IdempotencyKeyEntity {
  @PrimaryColumn({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @PrimaryColumn({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @PrimaryColumn({ type: 'varchar', length: 200 })
  key!: string;

  /** sha256 of method + path + body: the same key with other parameters is refused (422). */
  @Column({ name: 'request_hash', type: 'varchar', length: 64 })
  requestHash!: string;

  @Column({ type: 'integer' })
  status!: number;

  @Column({ type: 'jsonb' })
  response!: Record<string, unknown>;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
