import type { ApprovalPolicy } from '@custodian/contracts';
import { Column, CreateDateColumn, Entity, Index, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/** When changes need approval and by whom (bundle `approvalPolicies`); one row per org and name. */
@Entity({ name: 'approval_policy' })
@Index('approval_policy_org_name', ['orgId', 'name'], { unique: true })
export class ApprovalPolicyEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @Column({ type: 'varchar', length: 128 })
  name!: string;

  /** The policy with its defaults filled in (normaliseApprovalPolicy). */
  @Column({ type: 'jsonb' })
  definition!: ApprovalPolicy;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
