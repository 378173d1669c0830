import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Init1795311846234 implements MigrationInterface {
  name = 'Init1795311846234';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(
      'CREATE TABLE "outbox" ("id" uuid NOT NULL, "subject" character varying(128) NOT NULL, "payload" jsonb NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "published_at" TIMESTAMP WITH TIME ZONE, "attempts" integer NOT NULL DEFAULT \'0\', CONSTRAINT "PK_340ab539f309f03bdaa14aa7649" PRIMARY KEY ("id"))',
    );
    await runner.query('CREATE INDEX "outbox_unpublished_idx" ON "outbox" ("id") WHERE published_at IS NULL');
    await runner.query(
      'CREATE TABLE "object_definition" ("id" uuid NOT NULL, "org_id" uuid NOT NULL, "name" character varying(64) NOT NULL, "label" character varying(200) NOT NULL, "definition" jsonb NOT NULL, "version" integer NOT NULL DEFAULT \'1\', "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_56c3b8eb407649b1c7df9d4ade5" PRIMARY KEY ("id"))',
    );
    await runner.query('CREATE UNIQUE INDEX "object_definition_org_name_uq" ON "object_definition" ("org_id", "name") ');
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP INDEX "objects"."object_definition_org_name_uq"');
    await runner.query('DROP TABLE "object_definition"');
    await runner.query('DROP INDEX "objects"."outbox_unpublished_idx"');
    await runner.query('DROP TABLE "outbox"');
  }
}
