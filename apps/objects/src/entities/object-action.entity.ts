import { Column, CreateDateColumn, Entity, Index, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/** A declared action on an object (bundle `actions`): what it sets when run. Running is not built yet. */
@Entity({ name: 'object_action' })
@Index('object_action_org_object_name', ['orgId', 'objectName', 'name'], { unique: true })
export class ObjectActionEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @Column({ name: 'object_name', type: 'varchar', length: 64 })
  objectName!: string;

  @Column({ type: 'varchar', length: 64 })
  name!: string;

  /** The action as declared, defaults filled in (see actions/action.schema.ts). */
  @Column({ type: 'jsonb' })
  definition!: Record<string, unknown>;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
