import type { MigrationInterface, QueryRunner } from 'typeorm';

export class PendingActions1796189644046 implements MigrationInterface {
  name = 'PendingActions1796189644046';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(
      'CREATE TABLE "pending_action_comment" ("id" uuid NOT NULL, "action_id" uuid NOT NULL, "org_id" uuid NOT NULL, "author_user_id" uuid NOT NULL, "body" character varying(2000) NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_9ca65428941eb2811b04749dd39" PRIMARY KEY ("id"))',
    );
    await runner.query('CREATE INDEX "pending_action_comment_action" ON "pending_action_comment" ("action_id", "created_at") ');
    await runner.query(
      'CREATE TABLE "pending_action_decision" ("id" uuid NOT NULL, "action_id" uuid NOT NULL, "org_id" uuid NOT NULL, "approver_user_id" uuid NOT NULL, "credential" jsonb NOT NULL, "decision" character varying(8) NOT NULL, "reason" character varying(2000), "revision" integer NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_42ef05414adb7f3e85007c93f6d" PRIMARY KEY ("id"))',
    );
    await runner.query(
      'CREATE UNIQUE INDEX "pending_action_decision_once" ON "pending_action_decision" ("action_id", "approver_user_id") ',
    );
    await runner.query(
      'CREATE TABLE "pending_action" ("id" uuid NOT NULL, "seq" BIGSERIAL NOT NULL, "org_id" uuid NOT NULL, "kind" character varying(32) NOT NULL, "state" character varying(16) NOT NULL, "revision" integer NOT NULL DEFAULT \'1\', "requester_user_id" uuid NOT NULL, "requester" jsonb NOT NULL, "agent_client_id" character varying(128), "object_name" character varying(64) NOT NULL, "record_id" uuid, "action_name" character varying(128), "expected_version" integer, "values" jsonb NOT NULL, "diff" jsonb NOT NULL, "justification" character varying(2000) NOT NULL, "context" jsonb NOT NULL, "policy_name" character varying(128), "approver_capability" character varying(64) NOT NULL, "required_approvals" integer NOT NULL, "expires_at" TIMESTAMP WITH TIME ZONE NOT NULL, "outcome" jsonb, "apply_attempts" integer NOT NULL DEFAULT \'0\', "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_0be699da2b552dfb4fd79e1e9af" PRIMARY KEY ("id"))',
    );
    await runner.query('CREATE INDEX "pending_action_to_apply" ON "pending_action" ("updated_at") WHERE "state" = \'approved\'');
    await runner.query('CREATE INDEX "pending_action_open_expiry" ON "pending_action" ("expires_at") WHERE "state" = \'pending\'');
    await runner.query('CREATE INDEX "pending_action_org_requester_seq" ON "pending_action" ("org_id", "requester_user_id", "seq") ');
    await runner.query('CREATE INDEX "pending_action_org_state_seq" ON "pending_action" ("org_id", "state", "seq") ');
    await runner.query('CREATE INDEX "pending_action_org_seq" ON "pending_action" ("org_id", "seq") ');
    // The database itself refuses a state change outside the forward-only graph, whatever the code does.
    await runner.query(`CREATE FUNCTION pending_action_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF OLD.state IN ('applied', 'stale', 'forbidden', 'failed', 'rejected', 'cancelled', 'expired') THEN
          RAISE EXCEPTION 'pending action % is final (%)', OLD.id, OLD.state USING ERRCODE = '55000';
        END IF;
        IF NEW.state <> OLD.state AND NOT (
             (OLD.state = 'pending' AND NEW.state IN ('approved', 'rejected', 'cancelled', 'expired'))
          OR (OLD.state = 'approved' AND NEW.state IN ('applied', 'stale', 'forbidden', 'failed'))) THEN
          RAISE EXCEPTION 'pending action %: % -> % is not a transition', OLD.id, OLD.state, NEW.state USING ERRCODE = '55000';
        END IF;
        RETURN NEW;
      END $$`);
    await runner.query(
      'CREATE TRIGGER pending_action_forward_only BEFORE UPDATE ON "pending_action" FOR EACH ROW EXECUTE FUNCTION pending_action_forward_only()',
    );
    await runner.query(`CREATE FUNCTION pending_action_no_delete() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'pending actions are never deleted' USING ERRCODE = '55000';
      END $$`);
    await runner.query(
      'CREATE TRIGGER pending_action_no_delete BEFORE DELETE ON "pending_action" FOR EACH ROW EXECUTE FUNCTION pending_action_no_delete()',
    );
    await runner.query(
      `ALTER TABLE "pending_action" ADD CONSTRAINT "pending_action_state" CHECK ("state" IN ('pending', 'approved', 'applied', 'stale', 'forbidden', 'failed', 'rejected', 'cancelled', 'expired'))`,
    );
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP TRIGGER pending_action_no_delete ON "pending_action"');
    await runner.query('DROP TRIGGER pending_action_forward_only ON "pending_action"');
    await runner.query('DROP FUNCTION pending_action_no_delete()');
    await runner.query('DROP FUNCTION pending_action_forward_only()');
    await runner.query('DROP INDEX "approvals"."pending_action_org_seq"');
    await runner.query('DROP INDEX "approvals"."pending_action_org_state_seq"');
    await runner.query('DROP INDEX "approvals"."pending_action_org_requester_seq"');
    await runner.query('DROP INDEX "approvals"."pending_action_open_expiry"');
    await runner.query('DROP INDEX "approvals"."pending_action_to_apply"');
    await runner.query('DROP TABLE "pending_action"');
    await runner.query('DROP INDEX "approvals"."pending_action_decision_once"');
    await runner.query('DROP TABLE "pending_action_decision"');
    await runner.query('DROP INDEX "approvals"."pending_action_comment_action"');
    await runner.query('DROP TABLE "pending_action_comment"');
  }
}
