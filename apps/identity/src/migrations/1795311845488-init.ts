import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Init1795311845488 implements MigrationInterface {
  name = 'Init1795311845488';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(
      'CREATE TABLE "outbox" ("id" uuid NOT NULL, "subject" character varying(128) NOT NULL, "payload" jsonb NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "published_at" TIMESTAMP WITH TIME ZONE, "attempts" integer NOT NULL DEFAULT \'0\', CONSTRAINT "PK_340ab539f309f03bdaa14aa7649" PRIMARY KEY ("id"))',
    );
    await runner.query('CREATE INDEX "outbox_unpublished_idx" ON "outbox" ("id") WHERE published_at IS NULL');
    await runner.query(
      'CREATE TABLE "membership" ("id" uuid NOT NULL, "org_id" uuid NOT NULL, "user_id" uuid NOT NULL, "capabilities" text array NOT NULL DEFAULT \'{}\', "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_83c1afebef3059472e7c37e8de8" PRIMARY KEY ("id"))',
    );
    await runner.query('CREATE INDEX "membership_user_idx" ON "membership" ("user_id") ');
    await runner.query('CREATE UNIQUE INDEX "membership_org_user_uq" ON "membership" ("org_id", "user_id") ');
    await runner.query(
      'CREATE TABLE "organization" ("id" uuid NOT NULL, "name" character varying(200) NOT NULL, "policy_version" bigint NOT NULL DEFAULT \'1\', "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_472c1f99a32def1b0abb219cd67" PRIMARY KEY ("id"))',
    );
    await runner.query(
      'CREATE TABLE "session" ("id" uuid NOT NULL, "org_id" uuid NOT NULL, "user_id" uuid NOT NULL, "refresh_hash" character varying(64) NOT NULL, "family_id" uuid NOT NULL, "expires_at" TIMESTAMP WITH TIME ZONE NOT NULL, "revoked_at" TIMESTAMP WITH TIME ZONE, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_f55da76ac1c3ac420f444d2ff11" PRIMARY KEY ("id"))',
    );
    await runner.query('CREATE INDEX "session_user_idx" ON "session" ("user_id") ');
    await runner.query('CREATE UNIQUE INDEX "session_refresh_hash_uq" ON "session" ("refresh_hash") ');
    await runner.query(
      'CREATE TABLE "signing_key" ("kid" character varying(64) NOT NULL, "alg" character varying(16) NOT NULL, "public_jwk" jsonb NOT NULL, "private_key_enc" text NOT NULL, "active" boolean NOT NULL DEFAULT true, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "retired_at" TIMESTAMP WITH TIME ZONE, CONSTRAINT "PK_00d7e305393ab903d6eb06c11f9" PRIMARY KEY ("kid"))',
    );
    await runner.query(
      'CREATE TABLE "user_account" ("id" uuid NOT NULL, "email" character varying(320) NOT NULL, "display_name" character varying(200) NOT NULL, "password_hash" character varying(256) NOT NULL, "active" boolean NOT NULL DEFAULT true, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_6acfec7285fdf9f463462de3e9f" PRIMARY KEY ("id"))',
    );
    await runner.query('CREATE UNIQUE INDEX "user_account_email_uq" ON "user_account" ("email") ');
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP INDEX "identity"."user_account_email_uq"');
    await runner.query('DROP TABLE "user_account"');
    await runner.query('DROP TABLE "signing_key"');
    await runner.query('DROP INDEX "identity"."session_refresh_hash_uq"');
    await runner.query('DROP INDEX "identity"."session_user_idx"');
    await runner.query('DROP TABLE "session"');
    await runner.query('DROP TABLE "organization"');
    await runner.query('DROP INDEX "identity"."membership_org_user_uq"');
    await runner.query('DROP INDEX "identity"."membership_user_idx"');
    await runner.query('DROP TABLE "membership"');
    await runner.query('DROP INDEX "identity"."outbox_unpublished_idx"');
    await runner.query('DROP TABLE "outbox"');
  }
}
