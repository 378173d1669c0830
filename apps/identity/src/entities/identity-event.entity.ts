import { Column, CreateDateColumn, Entity, Generated, Index, PrimaryColumn } from 'typeorm';

/**
 * Identity's own event outbox for the directory and revocation streams: written in the change's
 * transaction, published after commit (and re-published by a sweep after a crash).
 */
@Entity({ name: 'identity_event' })
@Index('identity_event_unpublished_idx', ['seq'], { where: 'published_at IS NULL' })
export class IdentityEventEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  /** Commit order within this database; events are published in this order. */
  @Column({ type: 'bigint' })
  @Generated('increment')
  seq!: string;

  @Column({ type: 'varchar', length: 128 })
  subject!: string;

  @Column({ type: 'jsonb' })
  payload!: Record<string, unknown>;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'published_at', type: 'timestamptz', nullable: true })
  publishedAt!: Date | null;
}
