import type { MigrationInterface, QueryRunner } from 'typeorm';

export class ApprovalPolicies1795319867947 implements MigrationInterface {
  name = 'ApprovalPolicies1795319867947';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(
      'CREATE TABLE "approval_policy" ("id" uuid NOT NULL, "org_id" uuid NOT NULL, "name" character varying(128) NOT NULL, "definition" jsonb NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_06da9549a940994965e137d4b8a" PRIMARY KEY ("id"))',
    );
    await runner.query('CREATE UNIQUE INDEX "approval_policy_org_name" ON "approval_policy" ("org_id", "name") ');
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP INDEX "approvals"."approval_policy_org_name"');
    await runner.query('DROP TABLE "approval_policy"');
  }
}
