import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** Transitive closure of the role tree: one row per (ancestor, descendant), depth 0 for the node itself. */
@Entity({ name: 'role_closure' })
@Index('role_closure_descendant_idx', ['descendantId', 'depth'])
export class RoleClosureEntity {
  @PrimaryColumn({ name: 'ancestor_id', type: 'uuid' })
  ancestorId!: string;

  @PrimaryColumn({ name: 'descendant_id', type: 'uuid' })
  descendantId!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @Column({ type: 'integer' })
  depth!: number;
}
