import type { MigrationInterface, QueryRunner } from 'typeorm';

export class RecordsAndDirectory1795315243292 implements MigrationInterface {
  name = 'RecordsAndDirectory1795315243292';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(
      'CREATE TABLE "user_roles" ("org_id" uuid NOT NULL, "user_id" uuid NOT NULL, "role_id" uuid NOT NULL, CONSTRAINT "PK_db478f16f7e1ec32b971f179edc" PRIMARY KEY ("org_id", "user_id"))',
    );
    await runner.query(
      'CREATE TABLE "role_parent" ("org_id" uuid NOT NULL, "role_id" uuid NOT NULL, "parent_id" uuid, CONSTRAINT "PK_39cc5fe9ce765d7e2861e978998" PRIMARY KEY ("org_id", "role_id"))',
    );
    await runner.query(
      'CREATE TABLE "role_closure" ("org_id" uuid NOT NULL, "ancestor_id" uuid NOT NULL, "descendant_id" uuid NOT NULL, "depth" integer NOT NULL, CONSTRAINT "PK_1234e436ead16af15fa3714f24e" PRIMARY KEY ("org_id", "ancestor_id", "descendant_id"))',
    );
    await runner.query('CREATE INDEX "role_closure_descendant_idx" ON "role_closure" ("org_id", "descendant_id") ');
    await runner.query(
      'CREATE TABLE "group_members" ("org_id" uuid NOT NULL, "group_id" uuid NOT NULL, "user_id" uuid NOT NULL, CONSTRAINT "PK_fa805606785f87a2b442d7d4074" PRIMARY KEY ("org_id", "group_id", "user_id"))',
    );
    await runner.query('CREATE INDEX "group_members_user_idx" ON "group_members" ("org_id", "user_id") ');
    await runner.query(
      'CREATE TABLE "directory_replica_state" ("org_id" uuid NOT NULL, "applied_seq" bigint NOT NULL DEFAULT \'0\', "directory_version" bigint NOT NULL DEFAULT \'0\', "announced_version" bigint NOT NULL DEFAULT \'0\', "directory_announced_version" bigint NOT NULL DEFAULT \'0\', CONSTRAINT "PK_79533c6b82928caae80e0f63526" PRIMARY KEY ("org_id"))',
    );
    await runner.query(
      'CREATE TABLE "idempotency_key" ("org_id" uuid NOT NULL, "user_id" uuid NOT NULL, "key" character varying(200) NOT NULL, "request_hash" character varying(64) NOT NULL, "status" integer NOT NULL, "response" jsonb NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_c98c636cbbd9af1b7a2bc63c12d" PRIMARY KEY ("org_id", "user_id", "key"))',
    );
    await runner.query(
      'CREATE TABLE "record_shares" ("id" uuid NOT NULL, "org_id" uuid NOT NULL, "object_name" character varying(64) NOT NULL, "record_id" uuid NOT NULL, "grantee_type" character varying(32) NOT NULL, "grantee_id" uuid NOT NULL, "access_level" character varying(8) NOT NULL, "created_by" uuid NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_eb858b5d07f9eae05a652fda954" PRIMARY KEY ("id"))',
    );
    await runner.query(
      'CREATE UNIQUE INDEX "record_shares_unique" ON "record_shares" ("org_id", "object_name", "record_id", "grantee_type", "grantee_id") ',
    );
    await runner.query(
      'CREATE INDEX "record_shares_grantee_idx" ON "record_shares" ("org_id", "grantee_type", "grantee_id", "object_name") ',
    );
    await runner.query('CREATE INDEX "record_shares_record_idx" ON "record_shares" ("org_id", "object_name", "record_id") ');
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP INDEX "objects"."record_shares_record_idx"');
    await runner.query('DROP INDEX "objects"."record_shares_grantee_idx"');
    await runner.query('DROP INDEX "objects"."record_shares_unique"');
    await runner.query('DROP TABLE "record_shares"');
    await runner.query('DROP TABLE "idempotency_key"');
    await runner.query('DROP TABLE "directory_replica_state"');
    await runner.query('DROP INDEX "objects"."group_members_user_idx"');
    await runner.query('DROP TABLE "group_members"');
    await runner.query('DROP INDEX "objects"."role_closure_descendant_idx"');
    await runner.query('DROP TABLE "role_closure"');
    await runner.query('DROP TABLE "role_parent"');
    await runner.query('DROP TABLE "user_roles"');
  }
}
