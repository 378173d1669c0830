import type { MigrationInterface, QueryRunner } from 'typeorm';

export class ObjectActions1795319866057 implements MigrationInterface {
  name = 'ObjectActions1795319866057';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(
      'CREATE TABLE "object_action" ("id" uuid NOT NULL, "org_id" uuid NOT NULL, "object_name" character varying(64) NOT NULL, "name" character varying(64) NOT NULL, "definition" jsonb NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_7ac325eccc5fc7e35a273926bd5" PRIMARY KEY ("id"))',
    );
    await runner.query('CREATE UNIQUE INDEX "object_action_org_object_name" ON "object_action" ("org_id", "object_name", "name") ');
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP INDEX "objects"."object_action_org_object_name"');
    await runner.query('DROP TABLE "object_action"');
  }
}
