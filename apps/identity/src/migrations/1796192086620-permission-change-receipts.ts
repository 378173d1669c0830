import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Receipts of applied permission changes, so an approved change retried after a crash answers its first result. */
export class PermissionChangeReceipts1796192086620 implements MigrationInterface {
  name = 'PermissionChangeReceipts1796192086620';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(
      'CREATE TABLE "permission_change_receipt" ("org_id" uuid NOT NULL, "key" character varying(200) NOT NULL, "response" jsonb NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_bd28a4db108be5ceaaac6bd7790" PRIMARY KEY ("org_id", "key"))',
    );
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP TABLE "permission_change_receipt"');
  }
}
