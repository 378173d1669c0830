import { Column, CreateDateColumn, Entity, Index, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/** How a claim of the ID token grants a role, groups and permission sets at sign-in (docs/sso.md, JIT provisioning). */
export interface ClaimMapping {
  /** The ID token claim (top level); a string matches by equality, an array when it contains `value`. */
  claim: string;
  value: string;
  roleId?: string;
  groupIds?: string[];
  permissionSetIds?: string[];
}

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';

/**
 * One organization's OIDC identity provider. The client secret or private key is not here: it is a
 * write-only secret of the identity settings store (sealed with the master key, or a reference).
 */
@Entity({ name: 'oidc_connection' })
export class OidcConnectionEntity {
  @PrimaryColumn({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @Column({ type: 'varchar', length: 2048 })
  issuer!: string;

  @Column({ name: 'client_id', type: 'varchar', length: 255 })
  clientId!: string;

  @Column({ name: 'client_auth', type: 'varchar', length: 32 })
  clientAuth!: ClientAuthMethod;

  /** The JWS algorithm of private_key_jwt client assertions (RS256, PS256, ES256, EdDSA). */
  @Column({ name: 'private_key_alg', type: 'varchar', length: 16, nullable: true })
  privateKeyAlg!: string | null;

  @Column({ type: 'jsonb' })
  scopes!: string[];

  @Column({ type: 'boolean' })
  enabled!: boolean;

  /** Create an account at the first sign-in of an unknown identity (just-in-time provisioning). */
  @Column({ name: 'jit_provisioning', type: 'boolean' })
  jitProvisioning!: boolean;

  /** Link the first sign-in of an identity to an existing member with the same verified email. */
  @Column({ name: 'link_existing_users', type: 'boolean' })
  linkExistingUsers!: boolean;

  /** The claim that must be `true` for the email to count as verified (Entra ID: xms_edov). */
  @Column({ name: 'email_verified_claim', type: 'varchar', length: 64 })
  emailVerifiedClaim!: string;

  /** Lower-cased domains; empty = any domain. */
  @Column({ name: 'allowed_email_domains', type: 'jsonb' })
  allowedEmailDomains!: string[];

  @Column({ type: 'jsonb' })
  mappings!: ClaimMapping[];

  /** false: members of this org cannot sign in with a password (only through the IdP). */
  @Column({ name: 'password_login', type: 'boolean' })
  passwordLogin!: boolean;

  /**
   * The capabilities of the credential that last wrote the connection. Whoever controls the IdP can
   * sign in as any identity it vouches for, so an identity is never linked to a member who holds
   * more than this (R7: no credential mints a stronger one).
   */
  @Column({ name: 'writer_capabilities', type: 'jsonb' })
  writerCapabilities!: string[];

  @Column({ type: 'integer' })
  version!: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

/** An IdP identity (issuer + subject) linked to an account in one org. */
@Entity({ name: 'oidc_identity' })
@Index('oidc_identity_org_user_idx', ['orgId', 'userId'])
export class OidcIdentityEntity {
  @PrimaryColumn({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @PrimaryColumn({ type: 'varchar', length: 2048 })
  issuer!: string;

  @PrimaryColumn({ type: 'varchar', length: 255 })
  subject!: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  /** How the link was made: a new account (jit) or an existing member by verified email (email). */
  @Column({ name: 'linked_by', type: 'varchar', length: 16 })
  linkedBy!: 'jit' | 'email';

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'last_sign_in_at', type: 'timestamptz' })
  lastSignInAt!: Date;
}

/** A Custodian session (refresh family) started by an OIDC sign-in: back-channel logout finds it by sub or sid. */
@Entity({ name: 'oidc_session' })
@Index('oidc_session_subject_idx', ['orgId', 'issuer', 'subject'])
@Index('oidc_session_sid_idx', ['orgId', 'issuer', 'idpSid'])
export class OidcSessionEntity {
  @PrimaryColumn({ name: 'family_id', type: 'uuid' })
  familyId!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @Column({ type: 'varchar', length: 2048 })
  issuer!: string;

  @Column({ type: 'varchar', length: 255 })
  subject!: string;

  /** The IdP's session id (`sid` claim), when it sends one. */
  @Column({ name: 'idp_sid', type: 'varchar', length: 255, nullable: true })
  idpSid!: string | null;

  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}

export const FEDERATION_ENTITIES = [OidcConnectionEntity, OidcIdentityEntity, OidcSessionEntity];
