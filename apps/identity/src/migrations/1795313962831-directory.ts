import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Directory1795313962831 implements MigrationInterface {
  name = 'Directory1795313962831';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(
      'CREATE TABLE "api_key" ("id" uuid NOT NULL, "org_id" uuid NOT NULL, "user_id" uuid NOT NULL, "name" character varying(200) NOT NULL, "prefix" character varying(32) NOT NULL, "secret_hash" character varying(64) NOT NULL, "scopes" text array NOT NULL DEFAULT \'{}\', "expires_at" TIMESTAMP WITH TIME ZONE, "last_used_at" TIMESTAMP WITH TIME ZONE, "revoked_at" TIMESTAMP WITH TIME ZONE, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_b1bd840641b8acbaad89c3d8d11" PRIMARY KEY ("id"))',
    );
    await runner.query('CREATE INDEX "api_key_org_user_idx" ON "api_key" ("org_id", "user_id") ');
    await runner.query('CREATE UNIQUE INDEX "api_key_prefix_uq" ON "api_key" ("prefix") ');
    await runner.query(
      'CREATE TABLE "group_member" ("group_id" uuid NOT NULL, "user_id" uuid NOT NULL, "org_id" uuid NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_4e21968f2f777c87874d5c5f538" PRIMARY KEY ("group_id", "user_id"))',
    );
    await runner.query('CREATE INDEX "group_member_user_idx" ON "group_member" ("org_id", "user_id") ');
    await runner.query(
      'CREATE TABLE "user_group" ("id" uuid NOT NULL, "org_id" uuid NOT NULL, "name" character varying(200) NOT NULL, "description" character varying(1000) NOT NULL DEFAULT \'\', "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_3c29fba6fe013ec8724378ce7c9" PRIMARY KEY ("id"))',
    );
    await runner.query('CREATE UNIQUE INDEX "user_group_org_name_uq" ON "user_group" ("org_id", "name") ');
    await runner.query(
      'CREATE TABLE "identity_event" ("id" uuid NOT NULL, "seq" BIGSERIAL NOT NULL, "subject" character varying(128) NOT NULL, "payload" jsonb NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "published_at" TIMESTAMP WITH TIME ZONE, CONSTRAINT "PK_05eb9a80720934f1c886f0c0688" PRIMARY KEY ("id"))',
    );
    await runner.query('CREATE INDEX "identity_event_unpublished_idx" ON "identity_event" ("seq") WHERE published_at IS NULL');
    await runner.query(
      'CREATE TABLE "login_throttle" ("key" character varying(80) NOT NULL, "failures" integer NOT NULL DEFAULT \'0\', "window_started_at" TIMESTAMP WITH TIME ZONE NOT NULL, "locked_until" TIMESTAMP WITH TIME ZONE, CONSTRAINT "PK_14c03bac82292a8310c54cb98d0" PRIMARY KEY ("key"))',
    );
    await runner.query(
      'CREATE TABLE "permission_set_assignment" ("id" uuid NOT NULL, "org_id" uuid NOT NULL, "permission_set_id" uuid NOT NULL, "user_id" uuid, "group_id" uuid, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_26ec62d7e4dbfb615a8134629d5" PRIMARY KEY ("id"))',
    );
    await runner.query('CREATE INDEX "psa_org_group_idx" ON "permission_set_assignment" ("org_id", "group_id") ');
    await runner.query('CREATE INDEX "psa_org_user_idx" ON "permission_set_assignment" ("org_id", "user_id") ');
    await runner.query(
      'CREATE UNIQUE INDEX "psa_set_group_uq" ON "permission_set_assignment" ("permission_set_id", "group_id") WHERE group_id IS NOT NULL',
    );
    await runner.query(
      'CREATE UNIQUE INDEX "psa_set_user_uq" ON "permission_set_assignment" ("permission_set_id", "user_id") WHERE user_id IS NOT NULL',
    );
    await runner.query(
      'CREATE TABLE "permission_set" ("id" uuid NOT NULL, "org_id" uuid NOT NULL, "name" character varying(128) NOT NULL, "body" jsonb NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_40c60f41127ea51a22e63d291f9" PRIMARY KEY ("id"))',
    );
    await runner.query('CREATE UNIQUE INDEX "permission_set_org_name_uq" ON "permission_set" ("org_id", "name") ');
    await runner.query(
      'CREATE TABLE "role_closure" ("ancestor_id" uuid NOT NULL, "descendant_id" uuid NOT NULL, "org_id" uuid NOT NULL, "depth" integer NOT NULL, CONSTRAINT "PK_9f53520e4ba81f03421d3224538" PRIMARY KEY ("ancestor_id", "descendant_id"))',
    );
    await runner.query('CREATE INDEX "role_closure_descendant_idx" ON "role_closure" ("descendant_id", "depth") ');
    await runner.query(
      'CREATE TABLE "role" ("id" uuid NOT NULL, "org_id" uuid NOT NULL, "name" character varying(200) NOT NULL, "parent_id" uuid, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_b36bcfe02fc8de3c57a8b2391c2" PRIMARY KEY ("id"))',
    );
    await runner.query('CREATE INDEX "role_parent_idx" ON "role" ("parent_id") ');
    await runner.query('CREATE UNIQUE INDEX "role_org_name_uq" ON "role" ("org_id", "name") ');
    await runner.query('ALTER TABLE "membership" ADD "role_id" uuid');
    await runner.query('ALTER TABLE "organization" ADD "directory_seq" bigint NOT NULL DEFAULT \'0\'');
    await runner.query('ALTER TABLE "session" ADD "rotated_at" TIMESTAMP WITH TIME ZONE');
    await runner.query('ALTER TABLE "signing_key" ADD "activates_at" TIMESTAMP WITH TIME ZONE');
    await runner.query('CREATE INDEX "membership_role_idx" ON "membership" ("role_id") ');
    await runner.query('CREATE INDEX "session_family_idx" ON "session" ("family_id") ');
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP INDEX "identity"."session_family_idx"');
    await runner.query('DROP INDEX "identity"."membership_role_idx"');
    await runner.query('ALTER TABLE "signing_key" DROP COLUMN "activates_at"');
    await runner.query('ALTER TABLE "session" DROP COLUMN "rotated_at"');
    await runner.query('ALTER TABLE "organization" DROP COLUMN "directory_seq"');
    await runner.query('ALTER TABLE "membership" DROP COLUMN "role_id"');
    await runner.query('DROP INDEX "identity"."role_org_name_uq"');
    await runner.query('DROP INDEX "identity"."role_parent_idx"');
    await runner.query('DROP TABLE "role"');
    await runner.query('DROP INDEX "identity"."role_closure_descendant_idx"');
    await runner.query('DROP TABLE "role_closure"');
    await runner.query('DROP INDEX "identity"."permission_set_org_name_uq"');
    await runner.query('DROP TABLE "permission_set"');
    await runner.query('DROP INDEX "identity"."psa_set_user_uq"');
    await runner.query('DROP INDEX "identity"."psa_set_group_uq"');
    await runner.query('DROP INDEX "identity"."psa_org_user_idx"');
    await runner.query('DROP INDEX "identity"."psa_org_group_idx"');
    await runner.query('DROP TABLE "permission_set_assignment"');
    await runner.query('DROP TABLE "login_throttle"');
    await runner.query('DROP INDEX "identity"."identity_event_unpublished_idx"');
    await runner.query('DROP TABLE "identity_event"');
    await runner.query('DROP INDEX "identity"."user_group_org_name_uq"');
    await runner.query('DROP TABLE "user_group"');
    await runner.query('DROP INDEX "identity"."group_member_user_idx"');
    await runner.query('DROP TABLE "group_member"');
    await runner.query('DROP INDEX "identity"."api_key_prefix_uq"');
    await runner.query('DROP INDEX "identity"."api_key_org_user_idx"');
    await runner.query('DROP TABLE "api_key"');
  }
}
