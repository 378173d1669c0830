import { Column, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * oidc-provider's storage (its adapter interface): one row per artifact — clients, grants,
 * interactions, browser sessions, authorization codes, refresh tokens. The id is stored only as a
 * keyed hash, because for codes and refresh tokens the id *is* the bearer value.
 */
@Entity({ name: 'oauth_model' })
@Index('oauth_model_grant_idx', ['grantId'])
@Index('oauth_model_uid_idx', ['uidHash'])
@Index('oauth_model_expires_idx', ['expiresAt'])
export class OAuthModelEntity {
  /** oidc-provider's model name: Client, Grant, Session, Interaction, AuthorizationCode, RefreshToken … */
  @PrimaryColumn({ type: 'varchar', length: 40 })
  model!: string;

  /** HMAC-SHA256 (master key) of the artifact's id, hex. */
  @PrimaryColumn({ name: 'id_hash', type: 'varchar', length: 64 })
  idHash!: string;

  /** The artifact without its id (and a client's secret sealed with the master key). */
  @Column({ type: 'jsonb' })
  payload!: Record<string, unknown>;

  @Column({ name: 'grant_id', type: 'varchar', length: 128, nullable: true })
  grantId!: string | null;

  /** Keyed hash of a session's uid (oidc-provider looks sessions up by it). */
  @Column({ name: 'uid_hash', type: 'varchar', length: 64, nullable: true })
  uidHash!: string | null;

  @Column({ name: 'expires_at', type: 'timestamptz', nullable: true })
  expiresAt!: Date | null;

  @Column({ name: 'consumed_at', type: 'timestamptz', nullable: true })
  consumedAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}

/**
 * A user's consent to one MCP client: the OAuth grant, the Custodian session it is bound to (the
 * revocation handle every service already honours, R10) and what was consented.
 */
@Entity({ name: 'oauth_consent' })
@Index('oauth_consent_grant_uq', ['grantId'], { unique: true })
@Index('oauth_consent_user_idx', ['userId'])
export class OAuthConsentEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'grant_id', type: 'varchar', length: 128 })
  grantId!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @Column({ name: 'session_id', type: 'uuid' })
  sessionId!: string;

  @Column({ name: 'client_id', type: 'varchar', length: 128 })
  clientId!: string;

  @Column({ name: 'client_name', type: 'varchar', length: 200 })
  clientName!: string;

  @Column({ type: 'text', array: true })
  scopes!: string[];

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
