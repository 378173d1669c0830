import { settingsTableSql } from '@custodian/platform';
import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The agent runtime's tables: org settings, agent profiles, conversations, messages, egress records. */
export class AgentRuntime1795400000000 implements MigrationInterface {
  name = 'AgentRuntime1795400000000';

  async up(runner: QueryRunner): Promise<void> {
    for (const sql of settingsTableSql()) await runner.query(sql);
    await runner.query(
      `CREATE TABLE "agent_profile" ("id" uuid NOT NULL, "org_id" uuid NOT NULL, "name" character varying(200) NOT NULL, "model" character varying(128), "system_prompt" text NOT NULL DEFAULT '', "scopes" text[] NOT NULL DEFAULT '{}', "limits" jsonb NOT NULL DEFAULT '{}', "version" integer NOT NULL DEFAULT 1, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_agent_profile" PRIMARY KEY ("id"), CONSTRAINT "UQ_agent_profile_name" UNIQUE ("org_id", "name"))`,
    );
    await runner.query(
      `CREATE TABLE "agent_conversation" ("id" uuid NOT NULL, "org_id" uuid NOT NULL, "user_id" uuid NOT NULL, "session_id" uuid, "api_key_id" uuid, "profile_id" uuid NOT NULL, "agent_client_id" character varying(128) NOT NULL, "state" character varying(24) NOT NULL DEFAULT 'idle', "last_error" character varying(500), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_agent_conversation" PRIMARY KEY ("id"))`,
    );
    await runner.query('CREATE INDEX "agent_conversation_user_idx" ON "agent_conversation" ("org_id", "user_id", "updated_at")');
    await runner.query(
      `CREATE TABLE "agent_message" ("id" uuid NOT NULL, "conversation_id" uuid NOT NULL, "org_id" uuid NOT NULL, "seq" integer NOT NULL, "role" character varying(16) NOT NULL, "content" text NOT NULL DEFAULT '', "tool_calls" jsonb, "tool_call_id" character varying(128), "tool_name" character varying(128), "pending_action_id" uuid, "pending_state" character varying(16), "meta" jsonb NOT NULL DEFAULT '{}', "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_agent_message" PRIMARY KEY ("id"), CONSTRAINT "UQ_agent_message_seq" UNIQUE ("conversation_id", "seq"), CONSTRAINT "FK_agent_message_conversation" FOREIGN KEY ("conversation_id") REFERENCES "agent_conversation"("id") ON DELETE CASCADE)`,
    );
    await runner.query(
      'CREATE INDEX "agent_message_pending_idx" ON "agent_message" ("pending_action_id") WHERE pending_action_id IS NOT NULL',
    );
    await runner.query(
      `CREATE TABLE "agent_egress" ("id" uuid NOT NULL, "org_id" uuid NOT NULL, "conversation_id" uuid NOT NULL, "provider" character varying(256) NOT NULL, "model" character varying(128) NOT NULL, "bytes_sent" integer NOT NULL, "record_ids" jsonb NOT NULL DEFAULT '[]', "fields" jsonb NOT NULL DEFAULT '[]', "withheld" jsonb NOT NULL DEFAULT '[]', "prompt_tokens" integer, "completion_tokens" integer, "outcome" character varying(32) NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_agent_egress" PRIMARY KEY ("id"), CONSTRAINT "FK_agent_egress_conversation" FOREIGN KEY ("conversation_id") REFERENCES "agent_conversation"("id") ON DELETE CASCADE)`,
    );
    await runner.query('CREATE INDEX "agent_egress_conversation_idx" ON "agent_egress" ("conversation_id", "created_at")');
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP TABLE "agent_egress"');
    await runner.query('DROP TABLE "agent_message"');
    await runner.query('DROP TABLE "agent_conversation"');
    await runner.query('DROP TABLE "agent_profile"');
    await runner.query('DROP TABLE "setting"');
  }
}
