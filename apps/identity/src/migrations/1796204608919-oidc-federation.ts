import { settingsTableSql } from '@custodian/platform';
import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * OIDC sign-in per org: the org's IdP connection, IdP identities linked to accounts, and the sessions
 * an OIDC sign-in started (for back-channel logout); plus identity's settings table, where the
 * connection's client secret or private key is kept sealed (libs/platform settings store).
 */
export class OidcFederation1796204608919 implements MigrationInterface {
  name = 'OidcFederation1796204608919';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(
      'CREATE TABLE "oidc_connection" ("org_id" uuid NOT NULL, "issuer" character varying(2048) NOT NULL, "client_id" character varying(255) NOT NULL, "client_auth" character varying(32) NOT NULL, "private_key_alg" character varying(16), "scopes" jsonb NOT NULL, "enabled" boolean NOT NULL, "jit_provisioning" boolean NOT NULL, "link_existing_users" boolean NOT NULL, "email_verified_claim" character varying(64) NOT NULL, "allowed_email_domains" jsonb NOT NULL, "mappings" jsonb NOT NULL, "password_login" boolean NOT NULL, "writer_capabilities" jsonb NOT NULL, "version" integer NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_db4f93e14102fba2752038855fc" PRIMARY KEY ("org_id"))',
    );
    await runner.query(
      'CREATE TABLE "oidc_identity" ("org_id" uuid NOT NULL, "issuer" character varying(2048) NOT NULL, "subject" character varying(255) NOT NULL, "user_id" uuid NOT NULL, "linked_by" character varying(16) NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "last_sign_in_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "PK_6303c5609da9ed0cefb2ecba48c" PRIMARY KEY ("org_id", "issuer", "subject"))',
    );
    await runner.query('CREATE INDEX "oidc_identity_org_user_idx" ON "oidc_identity" ("org_id", "user_id") ');
    await runner.query(
      'CREATE TABLE "oidc_session" ("family_id" uuid NOT NULL, "org_id" uuid NOT NULL, "issuer" character varying(2048) NOT NULL, "subject" character varying(255) NOT NULL, "idp_sid" character varying(255), "user_id" uuid NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_d7d289d842b14a76d1b6f9d5b35" PRIMARY KEY ("family_id"))',
    );
    await runner.query('CREATE INDEX "oidc_session_sid_idx" ON "oidc_session" ("org_id", "issuer", "idp_sid") ');
    await runner.query('CREATE INDEX "oidc_session_subject_idx" ON "oidc_session" ("org_id", "issuer", "subject") ');
    for (const sql of settingsTableSql()) await runner.query(sql);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP TABLE "setting"');
    await runner.query('DROP INDEX "identity"."oidc_session_subject_idx"');
    await runner.query('DROP INDEX "identity"."oidc_session_sid_idx"');
    await runner.query('DROP TABLE "oidc_session"');
    await runner.query('DROP INDEX "identity"."oidc_identity_org_user_idx"');
    await runner.query('DROP TABLE "oidc_identity"');
    await runner.query('DROP TABLE "oidc_connection"');
  }
}
