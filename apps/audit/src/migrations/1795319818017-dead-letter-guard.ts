import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Dead letters say why and where they came from (reason, subject, stream position, raw bytes as
 * text or base64), and become evidence like the log itself (ADR 0010): triggers created
 * `ENABLE ALWAYS` refuse DELETE and TRUNCATE for every role and replication mode, and allow an
 * UPDATE only when it sets `resolved_at` once and changes nothing else. Rows stored before this
 * migration get the reason `unknown`. Down drops the triggers first, then the columns.
 */
export class DeadLetterGuard1795319818017 implements MigrationInterface {
  name = 'DeadLetterGuard1795319818017';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query('ALTER TABLE "audit_dead_letter" ADD "payload_encoding" character varying(8) NOT NULL DEFAULT \'text\'');
    await runner.query('ALTER TABLE "audit_dead_letter" ADD "reason" character varying(16) NOT NULL DEFAULT \'unknown\'');
    await runner.query('ALTER TABLE "audit_dead_letter" ALTER COLUMN "reason" DROP DEFAULT');
    await runner.query('ALTER TABLE "audit_dead_letter" ADD "subject" character varying(128)');
    await runner.query('ALTER TABLE "audit_dead_letter" ADD "stream_seq" bigint');
    await runner.query('ALTER TABLE "audit_dead_letter" ADD "resolved_at" TIMESTAMP WITH TIME ZONE');
    // Compared as JSON minus the one writable column, so a column added later is protected too.
    await runner.query(`
      CREATE FUNCTION audit.audit_dead_letter_resolve_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF OLD.resolved_at IS NULL AND NEW.resolved_at IS NOT NULL
           AND (to_jsonb(NEW) - 'resolved_at') = (to_jsonb(OLD) - 'resolved_at') THEN
          RETURN NEW;
        END IF;
        RAISE EXCEPTION 'audit dead letters are append-only: UPDATE on %.% may only mark an unresolved row resolved', TG_TABLE_SCHEMA, TG_TABLE_NAME
          USING ERRCODE = 'insufficient_privilege';
      END $$`);
    await this.guard(runner, 'UPDATE', 'ROW', 'audit_dead_letter_resolve_only');
    await this.guard(runner, 'DELETE', 'ROW', 'audit_forbid_change');
    await this.guard(runner, 'TRUNCATE', 'STATEMENT', 'audit_forbid_change');
  }

  async down(runner: QueryRunner): Promise<void> {
    for (const op of ['update', 'delete', 'truncate'])
      await runner.query(`DROP TRIGGER IF EXISTS "audit_dead_letter_no_${op}" ON "audit_dead_letter"`);
    await runner.query('DROP FUNCTION audit.audit_dead_letter_resolve_only()');
    await runner.query('ALTER TABLE "audit_dead_letter" DROP COLUMN "resolved_at"');
    await runner.query('ALTER TABLE "audit_dead_letter" DROP COLUMN "stream_seq"');
    await runner.query('ALTER TABLE "audit_dead_letter" DROP COLUMN "subject"');
    await runner.query('ALTER TABLE "audit_dead_letter" DROP COLUMN "reason"');
    await runner.query('ALTER TABLE "audit_dead_letter" DROP COLUMN "payload_encoding"');
  }

  private async guard(runner: QueryRunner, op: string, level: 'ROW' | 'STATEMENT', fn: string): Promise<void> {
    const name = `audit_dead_letter_no_${op.toLowerCase()}`;
    await runner.query(`CREATE TRIGGER "${name}" BEFORE ${op} ON "audit_dead_letter" FOR EACH ${level} EXECUTE FUNCTION audit.${fn}()`);
    await runner.query(`ALTER TABLE "audit_dead_letter" ENABLE ALWAYS TRIGGER "${name}"`);
  }
}
