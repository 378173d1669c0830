import type { PermissionSet } from '@custodian/policy';
import { Column, CreateDateColumn, Entity, Index, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/** A permission set of one org; `body` is validated by the policy library's PermissionSetSchema. */
@Entity({ name: 'permission_set' })
@Index('permission_set_org_name_uq', ['orgId', 'name'], { unique: true })
export class PermissionSetEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  /** Copy of body.name, unique per org. */
  @Column({ type: 'varchar', length: 128 })
  name!: string;

  @Column({ type: 'jsonb' })
  body!: PermissionSet;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
