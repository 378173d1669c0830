import { Column, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

/** A reviewer's or the requester's note on a pending action. */
@Entity({ name: 'pending_action_comment' })
@Index('pending_action_comment_action', ['actionId', 'createdAt'])
export class PendingActionCommentEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'action_id', type: 'uuid' })
  actionId!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @Column({ name: 'author_user_id', type: 'uuid' })
  authorUserId!: string;

  @Column({ type: 'varchar', length: 2000 })
  body!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
