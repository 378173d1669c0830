import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Init1795311848548 implements MigrationInterface {
  name = 'Init1795311848548';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(
      'CREATE TABLE "outbox" ("id" uuid NOT NULL, "subject" character varying(128) NOT NULL, "payload" jsonb NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "published_at" TIMESTAMP WITH TIME ZONE, "attempts" integer NOT NULL DEFAULT \'0\', CONSTRAINT "PK_340ab539f309f03bdaa14aa7649" PRIMARY KEY ("id"))',
    );
    await runner.query('CREATE INDEX "outbox_unpublished_idx" ON "outbox" ("id") WHERE published_at IS NULL');
    await runner.query(
      'CREATE TABLE "audit_event" ("id" uuid NOT NULL, "org_id" uuid, "occurred_at" TIMESTAMP WITH TIME ZONE NOT NULL, "received_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "service" character varying(32) NOT NULL, "action" character varying(96) NOT NULL, "outcome" character varying(16) NOT NULL, "event" jsonb NOT NULL, CONSTRAINT "PK_481efbe8b0a403efe3f47a6528f" PRIMARY KEY ("id"))',
    );
    await runner.query('CREATE INDEX "audit_event_org_time_idx" ON "audit_event" ("org_id", "occurred_at") ');
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP INDEX "audit"."audit_event_org_time_idx"');
    await runner.query('DROP TABLE "audit_event"');
    await runner.query('DROP INDEX "audit"."outbox_unpublished_idx"');
    await runner.query('DROP TABLE "outbox"');
  }
}
