import { Column, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

@Entity({ name: 'session' })
@Index('session_refresh_hash_uq', ['refreshHash'], { unique: true })
@Index('session_user_idx', ['userId'])
@Index('session_family_idx', ['familyId'])
export class SessionEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  /** HMAC of the opaque refresh token; the token itself is never stored. */
  @Column({ name: 'refresh_hash', type: 'varchar', length: 64 })
  refreshHash!: string;

  /** Rotation family: reuse of a rotated token revokes the whole family (issue #4). */
  @Column({ name: 'family_id', type: 'uuid' })
  familyId!: string;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt!: Date | null;

  /** Set when this refresh token was exchanged for the next one of its family. */
  @Column({ name: 'rotated_at', type: 'timestamptz', nullable: true })
  rotatedAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
