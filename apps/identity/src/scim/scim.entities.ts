import { Column, CreateDateColumn, Entity, Index, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/**
 * What an identity provider knows a user by in one org: its userName (stored lower-cased, SCIM
 * compares it case-insensitively), its own id for the user (externalId) and the name parts. The
 * account itself (email, display name, active) stays in user_account.
 */
@Entity({ name: 'scim_user' })
@Index('scim_user_org_user_name_uq', ['orgId', 'userName'], { unique: true })
@Index('scim_user_org_external_id_uq', ['orgId', 'externalId'], { unique: true, where: '"external_id" IS NOT NULL' })
export class ScimUserEntity {
  @PrimaryColumn({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @PrimaryColumn({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @Column({ name: 'user_name', type: 'varchar', length: 320 })
  userName!: string;

  @Column({ name: 'external_id', type: 'varchar', length: 255, nullable: true })
  externalId!: string | null;

  @Column({ name: 'given_name', type: 'varchar', length: 200, nullable: true })
  givenName!: string | null;

  @Column({ name: 'family_name', type: 'varchar', length: 200, nullable: true })
  familyName!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

/** The identity provider's own id for a group of the org. */
@Entity({ name: 'scim_group' })
@Index('scim_group_org_external_id_uq', ['orgId', 'externalId'], { unique: true, where: '"external_id" IS NOT NULL' })
export class ScimGroupEntity {
  @PrimaryColumn({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @PrimaryColumn({ name: 'group_id', type: 'uuid' })
  groupId!: string;

  @Column({ name: 'external_id', type: 'varchar', length: 255, nullable: true })
  externalId!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
