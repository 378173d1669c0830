import { Column, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

/** A user's membership of one organization; a session acts in exactly one of them. */
@Entity({ name: 'membership' })
@Index('membership_org_user_uq', ['orgId', 'userId'], { unique: true })
@Index('membership_user_idx', ['userId'])
@Index('membership_role_idx', ['roleId'])
export class MembershipEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  /**
   * Capabilities granted directly to the membership. The bootstrap admin gets every system
   * capability here; permission sets (issue #4) add the rest.
   */
  @Column({ type: 'text', array: true, default: () => "'{}'" })
  capabilities!: string[];

  /** The user's role in this org (R4c), or null. */
  @Column({ name: 'role_id', type: 'uuid', nullable: true })
  roleId!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
