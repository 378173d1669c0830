import { Column, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

/** One reviewer's approval or rejection of one revision; a human decides an action at most once. */
@Entity({ name: 'pending_action_decision' })
@Index('pending_action_decision_once', ['actionId', 'approverUserId'], { unique: true })
export class PendingActionDecisionEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'action_id', type: 'uuid' })
  actionId!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @Column({ name: 'approver_user_id', type: 'uuid' })
  approverUserId!: string;

  /** The credential the reviewer used (session or API key id). */
  @Column({ type: 'jsonb' })
  credential!: { sessionId?: string; apiKeyId?: string };

  @Column({ type: 'varchar', length: 8 })
  decision!: 'approve' | 'reject';

  @Column({ type: 'varchar', length: 2000, nullable: true })
  reason!: string | null;

  @Column({ type: 'integer' })
  revision!: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
