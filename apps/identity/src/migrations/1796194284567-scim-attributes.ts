import type { MigrationInterface, QueryRunner } from 'typeorm';

/** What an identity provider knows users and groups by in one org (SCIM userName, externalId, name parts). */
export class ScimAttributes1796194284567 implements MigrationInterface {
  name = 'ScimAttributes1796194284567';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(
      'CREATE TABLE "scim_user" ("org_id" uuid NOT NULL, "user_id" uuid NOT NULL, "user_name" character varying(320) NOT NULL, "external_id" character varying(255), "given_name" character varying(200), "family_name" character varying(200), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_823c09e444ecafaf4cea6efe06b" PRIMARY KEY ("org_id", "user_id"))',
    );
    await runner.query(
      'CREATE UNIQUE INDEX "scim_user_org_external_id_uq" ON "scim_user" ("org_id", "external_id") WHERE "external_id" IS NOT NULL',
    );
    await runner.query('CREATE UNIQUE INDEX "scim_user_org_user_name_uq" ON "scim_user" ("org_id", "user_name") ');
    await runner.query(
      'CREATE TABLE "scim_group" ("org_id" uuid NOT NULL, "group_id" uuid NOT NULL, "external_id" character varying(255), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_05fdd76e590b4aee5523e1c81b3" PRIMARY KEY ("org_id", "group_id"))',
    );
    await runner.query(
      'CREATE UNIQUE INDEX "scim_group_org_external_id_uq" ON "scim_group" ("org_id", "external_id") WHERE "external_id" IS NOT NULL',
    );
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP INDEX "identity"."scim_group_org_external_id_uq"');
    await runner.query('DROP TABLE "scim_group"');
    await runner.query('DROP INDEX "identity"."scim_user_org_user_name_uq"');
    await runner.query('DROP INDEX "identity"."scim_user_org_external_id_uq"');
    await runner.query('DROP TABLE "scim_user"');
  }
}
