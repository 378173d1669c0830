import type { MigrationInterface, QueryRunner } from 'typeorm';

export class InboxWaitingIndex1796205468279 implements MigrationInterface {
  name = 'InboxWaitingIndex1796205468279';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(
      'CREATE INDEX "pending_action_waiting" ON "pending_action" ("org_id", "approver_capability", "seq") WHERE "state" = \'pending\'',
    );
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP INDEX "approvals"."pending_action_waiting"');
  }
}
