import type { MigrationInterface, QueryRunner } from 'typeorm';

/** An agent profile may name a provider (`provider.<name>.*` settings) instead of the org default. */
export class AgentProfileProvider1795500000000 implements MigrationInterface {
  name = 'AgentProfileProvider1795500000000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query('ALTER TABLE "agent_profile" ADD COLUMN "provider" character varying(32)');
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('ALTER TABLE "agent_profile" DROP COLUMN "provider"');
  }
}
