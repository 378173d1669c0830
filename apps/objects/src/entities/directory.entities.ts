import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * The replicated directory (docs/objects.md, "Directory replica and freshness"): the tables and
 * column names the policy SQL joins (docs/policy.md, "SQL table shapes"). Rebuilt from identity's DirectoryChanged stream only.
 */
@Entity({ name: 'user_roles' })
export class UserRoleEntity {
  @PrimaryColumn({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @PrimaryColumn({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @Column({ name: 'role_id', type: 'uuid' })
  roleId!: string;
}

/** role → parent as last announced; the closure below is derived from it. */
@Entity({ name: 'role_parent' })
export class RoleParentEntity {
  @PrimaryColumn({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @PrimaryColumn({ name: 'role_id', type: 'uuid' })
  roleId!: string;

  @Column({ name: 'parent_id', type: 'uuid', nullable: true })
  parentId!: string | null;
}

@Entity({ name: 'role_closure' })
@Index('role_closure_descendant_idx', ['orgId', 'descendantId'])
export class RoleClosureEntity {
  @PrimaryColumn({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @PrimaryColumn({ name: 'ancestor_id', type: 'uuid' })
  ancestorId!: string;

  @PrimaryColumn({ name: 'descendant_id', type: 'uuid' })
  descendantId!: string;

  @Column({ type: 'integer' })
  depth!: number;
}

@Entity({ name: 'group_members' })
@Index('group_members_user_idx', ['orgId', 'userId'])
export class GroupMemberEntity {
  @PrimaryColumn({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @PrimaryColumn({ name: 'group_id', type: 'uuid' })
  groupId!: string;

  @PrimaryColumn({ name: 'user_id', type: 'uuid' })
  userId!: string;
}

/**
 * How far the replica of one org has got (R10): the last directory `seq` applied, the policy
 * version it carried, and the policy versions announced on the policy-version stream.
 */
@Entity({ name: 'directory_replica_state' })
export class DirectoryReplicaStateEntity {
  @PrimaryColumn({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @Column({ name: 'applied_seq', type: 'bigint', default: 0 })
  appliedSeq!: string;

  /** Policy version of the last applied directory event. */
  @Column({ name: 'directory_version', type: 'bigint', default: 0 })
  directoryVersion!: string;

  /** Highest policy version announced (PolicyVersionChanged). */
  @Column({ name: 'announced_version', type: 'bigint', default: 0 })
  announcedVersion!: string;

  /** Highest announced version whose change also produces directory events. */
  @Column({ name: 'directory_announced_version', type: 'bigint', default: 0 })
  directoryAnnouncedVersion!: string;
}
