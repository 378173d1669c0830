import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Storage of the OAuth 2.1 authorization server for MCP clients (oidc-provider artifacts) and the consents bound to sessions. */
export class OAuthServer1796204522820 implements MigrationInterface {
  name = 'OAuthServer1796204522820';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(
      'CREATE TABLE "oauth_model" ("model" character varying(40) NOT NULL, "id_hash" character varying(64) NOT NULL, "payload" jsonb NOT NULL, "grant_id" character varying(128), "uid_hash" character varying(64), "expires_at" TIMESTAMP WITH TIME ZONE, "consumed_at" TIMESTAMP WITH TIME ZONE, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_def5f3431586b0c17b3a5b54f2a" PRIMARY KEY ("model", "id_hash"))',
    );
    await runner.query('CREATE INDEX "oauth_model_expires_idx" ON "oauth_model" ("expires_at") ');
    await runner.query('CREATE INDEX "oauth_model_uid_idx" ON "oauth_model" ("uid_hash") ');
    await runner.query('CREATE INDEX "oauth_model_grant_idx" ON "oauth_model" ("grant_id") ');
    await runner.query(
      'CREATE TABLE "oauth_consent" ("id" uuid NOT NULL, "grant_id" character varying(128) NOT NULL, "org_id" uuid NOT NULL, "user_id" uuid NOT NULL, "session_id" uuid NOT NULL, "client_id" character varying(128) NOT NULL, "client_name" character varying(200) NOT NULL, "scopes" text array NOT NULL, "expires_at" TIMESTAMP WITH TIME ZONE NOT NULL, "revoked_at" TIMESTAMP WITH TIME ZONE, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_8817a8fcbba25a5a9fcd9431af1" PRIMARY KEY ("id"))',
    );
    await runner.query('CREATE INDEX "oauth_consent_user_idx" ON "oauth_consent" ("user_id") ');
    await runner.query('CREATE UNIQUE INDEX "oauth_consent_grant_uq" ON "oauth_consent" ("grant_id") ');
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP INDEX "identity"."oauth_consent_grant_uq"');
    await runner.query('DROP INDEX "identity"."oauth_consent_user_idx"');
    await runner.query('DROP TABLE "oauth_consent"');
    await runner.query('DROP INDEX "identity"."oauth_model_grant_idx"');
    await runner.query('DROP INDEX "identity"."oauth_model_uid_idx"');
    await runner.query('DROP INDEX "identity"."oauth_model_expires_idx"');
    await runner.query('DROP TABLE "oauth_model"');
  }
}
