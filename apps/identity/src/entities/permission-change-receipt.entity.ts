import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/**
 * The answer of an applied permission change, by the caller's idempotency key (approvals uses the
 * pending action's id): a retry after a crash between identity's commit and the caller's answers
 * the first result instead of finding the target changed and calling it stale.
 */
@Entity({ name: 'permission_change_receipt' })
export class PermissionChangeReceiptEntity {
  @PrimaryColumn({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @PrimaryColumn({ type: 'varchar', length: 200 })
  key!: string;

  @Column({ type: 'jsonb' })
  response!: Record<string, unknown>;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
