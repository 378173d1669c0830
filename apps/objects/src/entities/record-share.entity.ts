import { Column, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

/** Explicit shares (R4e), in the shape the policy SQL joins (docs/policy.md). */
@Entity({ name: 'record_shares' })
@Index('record_shares_record_idx', ['orgId', 'objectName', 'recordId'])
@Index('record_shares_grantee_idx', ['orgId', 'granteeType', 'granteeId', 'objectName'])
@Index('record_shares_unique', ['orgId', 'objectName', 'recordId', 'granteeType', 'granteeId'], { unique: true })
export class RecordShareEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @Column({ name: 'object_name', type: 'varchar', length: 64 })
  objectName!: string;

  @Column({ name: 'record_id', type: 'uuid' })
  recordId!: string;

  @Column({ name: 'grantee_type', type: 'varchar', length: 32 })
  granteeType!: string;

  @Column({ name: 'grantee_id', type: 'uuid' })
  granteeId!: string;

  @Column({ name: 'access_level', type: 'varchar', length: 8 })
  accessLevel!: string;

  @Column({ name: 'created_by', type: 'uuid' })
  createdBy!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
