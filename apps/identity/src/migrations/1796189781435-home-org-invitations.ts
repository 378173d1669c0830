import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Each account gets a home org (the org whose user managers own its profile), backfilled as the org
 * of its earliest membership; and pending invitations, so another org can offer membership
 * without adding anyone unasked.
 */
export class HomeOrgInvitations1796189781435 implements MigrationInterface {
  name = 'HomeOrgInvitations1796189781435';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(
      'CREATE TABLE "invitation" ("id" uuid NOT NULL, "org_id" uuid NOT NULL, "email" character varying(320) NOT NULL, "role_id" uuid, "capabilities" text array NOT NULL DEFAULT \'{}\', "invited_by" uuid NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "expires_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "PK_beb994737756c0f18a1c1f8669c" PRIMARY KEY ("id"))',
    );
    await runner.query('CREATE INDEX "invitation_email_idx" ON "invitation" ("email") ');
    await runner.query('CREATE UNIQUE INDEX "invitation_org_email_uq" ON "invitation" ("org_id", "email") ');
    await runner.query('ALTER TABLE "user_account" ADD "home_org_id" uuid');
    await runner.query(
      'UPDATE "user_account" u SET "home_org_id" = (SELECT m."org_id" FROM "membership" m WHERE m."user_id" = u."id" ORDER BY m."created_at", m."id" LIMIT 1)',
    );
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('ALTER TABLE "user_account" DROP COLUMN "home_org_id"');
    await runner.query('DROP INDEX "identity"."invitation_org_email_uq"');
    await runner.query('DROP INDEX "identity"."invitation_email_idx"');
    await runner.query('DROP TABLE "invitation"');
  }
}
