import { encodeControlChars } from '@custodian/platform';
import type { MigrationInterface, QueryRunner } from 'typeorm';
import { canonicalJson } from '../chain/canonical-json';
import { GENESIS_HASH, chainIdOf, rowHash } from '../chain/chain-hash';

/** Tables whose rows are evidence: no UPDATE, DELETE or TRUNCATE, for any role, in any replication mode. */
const APPEND_ONLY = ['audit_event_archive', 'audit_checkpoint', 'audit_signing_key'];

/**
 * The per-org hash chain, archive storage, checkpoints and their signing key, the dead-letter
 * table, and the append-only triggers (ENABLE ALWAYS, so `session_replication_role = replica`
 * does not switch them off). Rows stored before this migration are chained in (received_at, id)
 * order. Down drops the triggers first; it refuses while archived rows exist, because they exist
 * nowhere else (docs/audit.md, "Migrations").
 */
export class HashChain1795313476105 implements MigrationInterface {
  name = 'HashChain1795313476105';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(
      'CREATE TABLE "audit_chain_head" ("chain_id" uuid NOT NULL, "seq" bigint NOT NULL DEFAULT \'0\', "head_hash" character(64) NOT NULL, "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_392fc735804fd7f73472e7a3790" PRIMARY KEY ("chain_id"))',
    );
    await runner.query(
      'CREATE TABLE "audit_checkpoint" ("id" uuid NOT NULL, "chain_id" uuid NOT NULL, "seq" bigint NOT NULL, "head_hash" character(64) NOT NULL, "signed_at" TIMESTAMP WITH TIME ZONE NOT NULL, "key_id" character varying(64) NOT NULL, "signature" character varying(128) NOT NULL, CONSTRAINT "PK_9720e45bb755b61bb1ab7d43839" PRIMARY KEY ("id"))',
    );
    await runner.query('CREATE INDEX "audit_checkpoint_chain_seq_idx" ON "audit_checkpoint" ("chain_id", "seq") ');
    await runner.query(
      'CREATE TABLE "audit_dead_letter" ("message_id" character varying(128) NOT NULL, "payload" text NOT NULL, "error" text NOT NULL, "deliveries" integer NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_1d7e3d0ea63608e8493470498ba" PRIMARY KEY ("message_id"))',
    );
    await runner.query(
      'CREATE TABLE "audit_event_archive" ("id" uuid NOT NULL, "org_id" uuid, "chain_id" uuid NOT NULL, "seq" bigint NOT NULL, "prev_hash" character(64) NOT NULL, "row_hash" character(64) NOT NULL, "occurred_at" TIMESTAMP WITH TIME ZONE NOT NULL, "received_at" TIMESTAMP WITH TIME ZONE NOT NULL, "service" character varying(32) NOT NULL, "action" character varying(96) NOT NULL, "outcome" character varying(16) NOT NULL, "actor_user_id" uuid, "target_type" character varying(64), "target_id" character varying(128), "event" jsonb NOT NULL, "archived_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_0dd9b153730d75ced14b9b9e801" PRIMARY KEY ("id"))',
    );
    await runner.query('CREATE UNIQUE INDEX "audit_event_archive_chain_seq_uq" ON "audit_event_archive" ("chain_id", "seq") ');
    await runner.query(
      'CREATE TABLE "audit_signing_key" ("kid" character varying(64) NOT NULL, "public_key" text NOT NULL, "private_key_sealed" text NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_81169ab9b04b72f0b13d14dad7b" PRIMARY KEY ("kid"))',
    );
    await runner.query('ALTER TABLE "audit_event" ADD "chain_id" uuid');
    await runner.query('ALTER TABLE "audit_event" ADD "seq" bigint');
    await runner.query('ALTER TABLE "audit_event" ADD "prev_hash" character(64)');
    await runner.query('ALTER TABLE "audit_event" ADD "row_hash" character(64)');
    await runner.query('ALTER TABLE "audit_event" ADD "actor_user_id" uuid');
    await runner.query('ALTER TABLE "audit_event" ADD "target_type" character varying(64)');
    await runner.query('ALTER TABLE "audit_event" ADD "target_id" character varying(128)');
    await this.chainExistingRows(runner);
    await runner.query('ALTER TABLE "audit_event" ALTER COLUMN "chain_id" SET NOT NULL');
    await runner.query('ALTER TABLE "audit_event" ALTER COLUMN "seq" SET NOT NULL');
    await runner.query('ALTER TABLE "audit_event" ALTER COLUMN "prev_hash" SET NOT NULL');
    await runner.query('ALTER TABLE "audit_event" ALTER COLUMN "row_hash" SET NOT NULL');
    await runner.query('CREATE INDEX "audit_event_chain_target_idx" ON "audit_event" ("chain_id", "target_type", "target_id", "seq") ');
    await runner.query('CREATE INDEX "audit_event_chain_actor_idx" ON "audit_event" ("chain_id", "actor_user_id", "seq") ');
    await runner.query('CREATE INDEX "audit_event_chain_action_idx" ON "audit_event" ("chain_id", "action", "seq") ');
    await runner.query('CREATE UNIQUE INDEX "audit_event_chain_seq_uq" ON "audit_event" ("chain_id", "seq") ');
    await runner.query(`
      CREATE FUNCTION audit.audit_forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'audit rows are append-only: % on %.% refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
          USING ERRCODE = 'insufficient_privilege';
      END $$`);
    // The archive move is the one way a row leaves audit_event: only after a verbatim copy is in the archive.
    await runner.query(`
      CREATE FUNCTION audit.audit_event_archive_move_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM audit.audit_event_archive a
                    WHERE a.id = OLD.id AND a.org_id IS NOT DISTINCT FROM OLD.org_id AND a.chain_id = OLD.chain_id
                      AND a.seq = OLD.seq AND a.prev_hash = OLD.prev_hash AND a.row_hash = OLD.row_hash
                      AND a.occurred_at = OLD.occurred_at AND a.received_at = OLD.received_at AND a.service = OLD.service
                      AND a.action = OLD.action AND a.outcome = OLD.outcome
                      AND a.actor_user_id IS NOT DISTINCT FROM OLD.actor_user_id
                      AND a.target_type IS NOT DISTINCT FROM OLD.target_type
                      AND a.target_id IS NOT DISTINCT FROM OLD.target_id AND a.event = OLD.event) THEN
          RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit rows are append-only: DELETE on audit.audit_event refused (only the archive move may remove a row)'
          USING ERRCODE = 'insufficient_privilege';
      END $$`);
    await this.guard(runner, 'audit_event', 'UPDATE', 'ROW', 'audit_forbid_change');
    await this.guard(runner, 'audit_event', 'DELETE', 'ROW', 'audit_event_archive_move_only');
    await this.guard(runner, 'audit_event', 'TRUNCATE', 'STATEMENT', 'audit_forbid_change');
    for (const table of APPEND_ONLY) {
      await this.guard(runner, table, 'UPDATE', 'ROW', 'audit_forbid_change');
      await this.guard(runner, table, 'DELETE', 'ROW', 'audit_forbid_change');
      await this.guard(runner, table, 'TRUNCATE', 'STATEMENT', 'audit_forbid_change');
    }
  }

  async down(runner: QueryRunner): Promise<void> {
    const archived = (await runner.query('SELECT count(*)::int AS n FROM "audit_event_archive"')) as Array<{ n: number }>;
    if (archived[0].n > 0) throw new Error('audit_event_archive holds archived audit rows; export them before migrating down');
    for (const table of ['audit_event', ...APPEND_ONLY]) {
      for (const op of ['update', 'delete', 'truncate']) await runner.query(`DROP TRIGGER IF EXISTS "${table}_no_${op}" ON "${table}"`);
    }
    await runner.query('DROP FUNCTION audit.audit_event_archive_move_only()');
    await runner.query('DROP FUNCTION audit.audit_forbid_change()');
    await runner.query('DROP INDEX "audit"."audit_event_chain_seq_uq"');
    await runner.query('DROP INDEX "audit"."audit_event_chain_action_idx"');
    await runner.query('DROP INDEX "audit"."audit_event_chain_actor_idx"');
    await runner.query('DROP INDEX "audit"."audit_event_chain_target_idx"');
    await runner.query('ALTER TABLE "audit_event" DROP COLUMN "target_id"');
    await runner.query('ALTER TABLE "audit_event" DROP COLUMN "target_type"');
    await runner.query('ALTER TABLE "audit_event" DROP COLUMN "actor_user_id"');
    await runner.query('ALTER TABLE "audit_event" DROP COLUMN "row_hash"');
    await runner.query('ALTER TABLE "audit_event" DROP COLUMN "prev_hash"');
    await runner.query('ALTER TABLE "audit_event" DROP COLUMN "seq"');
    await runner.query('ALTER TABLE "audit_event" DROP COLUMN "chain_id"');
    await runner.query('DROP TABLE "audit_signing_key"');
    await runner.query('DROP INDEX "audit"."audit_event_archive_chain_seq_uq"');
    await runner.query('DROP TABLE "audit_event_archive"');
    await runner.query('DROP TABLE "audit_dead_letter"');
    await runner.query('DROP INDEX "audit"."audit_checkpoint_chain_seq_idx"');
    await runner.query('DROP TABLE "audit_checkpoint"');
    await runner.query('DROP TABLE "audit_chain_head"');
  }

  private async guard(runner: QueryRunner, table: string, op: string, level: 'ROW' | 'STATEMENT', fn: string): Promise<void> {
    const name = `${table}_no_${op.toLowerCase()}`;
    await runner.query(`CREATE TRIGGER "${name}" BEFORE ${op} ON "${table}" FOR EACH ${level} EXECUTE FUNCTION audit.${fn}()`);
    await runner.query(`ALTER TABLE "${table}" ENABLE ALWAYS TRIGGER "${name}"`);
  }

  /** Chains rows stored before the chain existed, per org in (received_at, id) order. */
  private async chainExistingRows(runner: QueryRunner): Promise<void> {
    const rows = (await runner.query('SELECT id, org_id, event FROM "audit_event" ORDER BY received_at, id')) as Array<{
      id: string;
      org_id: string | null;
      event: Record<string, unknown>;
    }>;
    const heads = new Map<string, { seq: number; hash: string }>();
    for (const row of rows) {
      const chainId = chainIdOf(row.org_id);
      const head = heads.get(chainId) ?? { seq: 0, hash: GENESIS_HASH };
      const event = encodeControlChars(row.event);
      const seq = head.seq + 1;
      const hash = rowHash(chainId, seq, head.hash, canonicalJson(event));
      const actor = (event.actor ?? {}) as { userId?: string };
      const target = (event.target ?? {}) as { type?: string; id?: string };
      await runner.query(
        `UPDATE "audit_event" SET chain_id = $2, seq = $3, prev_hash = $4, row_hash = $5, actor_user_id = $6, target_type = $7,
           target_id = $8, event = $9 WHERE id = $1`,
        [row.id, chainId, seq, head.hash, hash, actor.userId ?? null, target.type ?? null, target.id ?? null, JSON.stringify(event)],
      );
      heads.set(chainId, { seq, hash });
    }
    for (const [chainId, head] of heads) {
      await runner.query('INSERT INTO "audit_chain_head" (chain_id, seq, head_hash) VALUES ($1, $2, $3)', [chainId, head.seq, head.hash]);
    }
  }
}
