import { Column, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

/** A permission set assigned to exactly one user or one group of the same org. */
@Entity({ name: 'permission_set_assignment' })
@Index('psa_set_user_uq', ['permissionSetId', 'userId'], { unique: true, where: 'user_id IS NOT NULL' })
@Index('psa_set_group_uq', ['permissionSetId', 'groupId'], { unique: true, where: 'group_id IS NOT NULL' })
@Index('psa_org_user_idx', ['orgId', 'userId'])
@Index('psa_org_group_idx', ['orgId', 'groupId'])
export class PermissionSetAssignmentEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @Column({ name: 'permission_set_id', type: 'uuid' })
  permissionSetId!: string;

  @Column({ name: 'user_id', type: 'uuid', nullable: true })
  userId!: string | null;

  @Column({ name: 'group_id', type: 'uuid', nullable: true })
  groupId!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
