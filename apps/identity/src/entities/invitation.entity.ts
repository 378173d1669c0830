import { Column, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * A pending offer of membership in one org, addressed to an email (which may or may not belong to
 * an account). The row lives only while pending: accepting, declining or revoking deletes it, and
 * the audit trail keeps the history.
 */
@Entity({ name: 'invitation' })
@Index('invitation_org_email_uq', ['orgId', 'email'], { unique: true })
@Index('invitation_email_idx', ['email'])
export class InvitationEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  /** Stored lower-cased, like user_account.email. */
  @Column({ type: 'varchar', length: 320 })
  email!: string;

  @Column({ name: 'role_id', type: 'uuid', nullable: true })
  roleId!: string | null;

  /** Direct capabilities the membership gets on acceptance, as far as the inviter still holds them then. */
  @Column({ type: 'text', array: true, default: () => "'{}'" })
  capabilities!: string[];

  /** The user manager whose authority the invitation carries. */
  @Column({ name: 'invited_by', type: 'uuid' })
  invitedBy!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;
}
