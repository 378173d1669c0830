import { randomUUID } from 'node:crypto';
import type { AuditEvent } from '@custodian/contracts';
import { createServiceDataSource, provisionServiceSchema, runMigrationsLocked } from '@custodian/platform';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { SERVICE_ENTITIES } from '../../apps/audit/src/entities';
import { SERVICE_MIGRATIONS } from '../../apps/audit/src/migrations';
import { AuditChainWriter } from '../../apps/audit/src/store/audit-chain.writer';
import { readChain } from '../../apps/audit/src/verify/chain-reader';
import { auditEvent } from './audit-harness';
import { createTestDatabase, type TestDatabase } from '../support/database';

/** The hash chain on real PostgreSQL: serialized per org, idempotent, and immutable (A2). */
describe('audit store: chain and immutability', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let writer: AuditChainWriter;
  let su: Client;

  beforeAll(async () => {
    db = await createTestDatabase('audit_store', { migrated: true });
    await provisionServiceSchema(db.url, 'audit');
    ds = createServiceDataSource({
      url: db.url,
      service: 'audit',
      entities: SERVICE_ENTITIES,
      migrations: SERVICE_MIGRATIONS,
      poolSize: 8,
    });
    await ds.initialize();
    await runMigrationsLocked(ds, 'audit');
    writer = new AuditChainWriter(ds);
    su = new Client({ connectionString: db.url });
    await su.connect();
  });

  afterAll(async () => {
    await su?.end();
    await ds?.destroy();
    await db?.drop();
  });

  it('appends contiguous sequences per org under concurrent writers, and each org has its own chain', async () => {
    const orgA = randomUUID();
    const orgB = randomUUID();
    const events = Array.from({ length: 60 }, (_, i) => auditEvent(i % 3 === 0 ? orgB : orgA));
    await Promise.all(events.map((e) => writer.append([e])));
    for (const org of [orgA, orgB]) {
      const rows = await ds.query(`SELECT seq::int AS seq FROM audit_event WHERE chain_id = $1 ORDER BY seq`, [org]);
      expect(rows.map((r: { seq: number }) => r.seq)).toEqual(Array.from({ length: rows.length }, (_, i) => i + 1));
      const verdict = await readChain(ds, org);
      expect(verdict).toMatchObject({ ok: true, headSeq: rows.length });
    }
  });

  it('is idempotent by event id: a redelivery or republish makes no second row and no gap', async () => {
    const org = randomUUID();
    const batch = [auditEvent(org), auditEvent(org), auditEvent(org)];
    expect(await writer.append(batch)).toEqual({ inserted: 3, duplicates: 0 });
    expect(await writer.append([batch[1]])).toEqual({ inserted: 0, duplicates: 1 });
    await Promise.all([writer.append([batch[0]]), writer.append([batch[2]]), writer.append([batch[0], batch[0]])]);
    const next = auditEvent(org);
    expect(await writer.append([next, next])).toEqual({ inserted: 1, duplicates: 1 });
    const rows = await ds.query(`SELECT id, seq::int AS seq FROM audit_event WHERE chain_id = $1 ORDER BY seq`, [org]);
    expect(rows.map((r: { seq: number }) => r.seq)).toEqual([1, 2, 3, 4]);
    expect(await readChain(ds, org)).toMatchObject({ ok: true, headSeq: 4 });
  });

  it('A5: control characters in names are stored encoded, and the stored form verifies', async () => {
    const org = randomUUID();
    const e = auditEvent(org, { details: { name: 'evil\u001b[31m\u0000name\u202e', 'k\u0007': 'v' } });
    await writer.append([e]);
    const [row] = await ds.query(`SELECT event FROM audit_event WHERE id = $1`, [e.id]);
    expect(row.event.details).toEqual({ name: 'evil\\u001b[31m\\u0000name\\u202e', 'k\\u0007': 'v' });
    expect(await readChain(ds, org)).toMatchObject({ ok: true, headSeq: 1 });
  });

  it('A5: secrets a producer failed to redact are stored only as keyed hashes', async () => {
    const org = randomUUID();
    const e = auditEvent(org, { details: { request: { email: 'a@b.c', password: 'hunter2', refreshToken: 'crt_secret' } } });
    await writer.append([e]);
    const [row] = await ds.query(`SELECT event::text AS text, event FROM audit_event WHERE id = $1`, [e.id]);
    expect(row.text).not.toContain('hunter2');
    expect(row.text).not.toContain('crt_secret');
    expect(row.event.details.request).toMatchObject({ email: 'a@b.c', password: expect.stringMatching(/^hmac-sha256:[0-9a-f]{64}$/) });
  });

  describe('A3: tampering in a copy of the data is located', () => {
    let org: string;
    const copies: string[] = [];
    beforeAll(async () => {
      org = randomUUID();
      for (let i = 0; i < 12; i++) await writer.append([auditEvent(org)]);
    });
    afterAll(async () => {
      for (const c of copies) await ds.query(`DROP TABLE ${c}`);
    });

    /** A plain copy of the org's rows (no triggers: that is what an attacker with a dump has). */
    async function copy(): Promise<string> {
      const name = `tamper_${copies.length}`;
      copies.push(name);
      await ds.query(`CREATE TABLE ${name} AS SELECT * FROM audit_event WHERE chain_id = $1`, [org]);
      return name;
    }
    const verifyCopy = (table: string, checkpoint?: { seq: number; headHash: string }): ReturnType<typeof readChain> =>
      readChain(ds, org, { tables: { live: table }, checkpoint });
    const headAt = async (seq: number): Promise<{ seq: number; headHash: string }> => {
      const [r] = await ds.query(`SELECT row_hash FROM audit_event WHERE chain_id = $1 AND seq = $2`, [org, seq]);
      return { seq, headHash: r.row_hash };
    };

    it('the intact copy verifies, also against a checkpoint of its head', async () => {
      expect(await verifyCopy(await copy(), await headAt(12))).toMatchObject({ ok: true, headSeq: 12 });
    });

    it('a flipped byte in one event', async () => {
      const t = await copy();
      await ds.query(`UPDATE ${t} SET event = jsonb_set(event, '{action}', '"record.updatee"') WHERE seq = 5`);
      expect(await verifyCopy(t)).toMatchObject({ ok: false, firstBadSeq: 5, problem: 'hash_mismatch' });
    });

    it('a deleted row', async () => {
      const t = await copy();
      await ds.query(`DELETE FROM ${t} WHERE seq = 8`);
      expect(await verifyCopy(t)).toMatchObject({ ok: false, firstBadSeq: 8, problem: 'sequence_gap' });
    });

    it('two rows reordered', async () => {
      const t = await copy();
      await ds.query(`UPDATE ${t} SET seq = CASE seq WHEN 3 THEN 4 ELSE 3 END WHERE seq IN (3, 4)`);
      expect(await verifyCopy(t)).toMatchObject({ ok: false, firstBadSeq: 3 });
    });

    it('a cut tail, against the last signed checkpoint', async () => {
      const t = await copy();
      await ds.query(`DELETE FROM ${t} WHERE seq > 9`);
      expect(await verifyCopy(t)).toMatchObject({ ok: true, headSeq: 9 });
      expect(await verifyCopy(t, await headAt(12))).toMatchObject({ ok: false, firstBadSeq: 10, problem: 'truncated' });
    });
  });

  describe('A2: rows cannot be changed, by anyone, in any replication mode', () => {
    let org: string;
    let id: string;
    beforeAll(async () => {
      org = randomUUID();
      const e = auditEvent(org);
      id = e.id;
      await writer.append([e, auditEvent(org)]);
    });

    const attempts = (table: string): Array<[string, string]> => [
      ['UPDATE', `UPDATE audit.${table} SET action = 'forged' WHERE chain_id = '${org}'`],
      ['DELETE', `DELETE FROM audit.${table} WHERE chain_id = '${org}'`],
      ['TRUNCATE', `TRUNCATE audit.${table}`],
    ];

    it('the tables are owned by the service role (so "owner" and "service role" are both tested below)', async () => {
      const r = await su.query(`SELECT tableowner FROM pg_tables WHERE schemaname = 'audit' AND tablename = 'audit_event'`);
      expect(r.rows[0].tableowner).toBe('custodian_audit');
    });

    it.each([
      ['the service (owner) role', '-c role=custodian_audit'],
      ['a superuser', ''],
      ['a superuser with session_replication_role = replica', '-c session_replication_role=replica'],
    ])('%s: UPDATE, DELETE and TRUNCATE of audit_event are refused', async (_who, options) => {
      const c = new Client({ connectionString: db.url, options });
      await c.connect();
      try {
        for (const [op, sql] of attempts('audit_event')) {
          await expect(c.query(sql)).rejects.toThrow(new RegExp(`append-only.*${op}`));
        }
        const rows = await c.query(`SELECT count(*)::int AS n FROM audit.audit_event WHERE chain_id = $1 AND action <> 'forged'`, [org]);
        expect(rows.rows[0].n).toBe(2);
      } finally {
        await c.end();
      }
    });

    it('the archive move is the only DELETE: it needs a verbatim copy in the archive, and happens once', async () => {
      const c = new Client({ connectionString: db.url, options: '-c role=custodian_audit' });
      await c.connect();
      try {
        // a doctored copy does not unlock the delete
        await c.query('BEGIN');
        await c.query(
          `INSERT INTO audit.audit_event_archive (${COLUMNS}, archived_at)
           SELECT ${COLUMNS.replace('action', `'forged'`)}, now() FROM audit.audit_event WHERE id = $1`,
          [id],
        );
        await expect(c.query(`DELETE FROM audit.audit_event WHERE id = $1`, [id])).rejects.toThrow(/append-only/);
        await c.query('ROLLBACK');
        // the real move
        await c.query('BEGIN');
        await c.query(
          `INSERT INTO audit.audit_event_archive (${COLUMNS}, archived_at) SELECT ${COLUMNS}, now() FROM audit.audit_event WHERE id = $1`,
          [id],
        );
        expect((await c.query(`DELETE FROM audit.audit_event WHERE id = $1`, [id])).rowCount).toBe(1);
        await c.query('COMMIT');
        // once: archiving again is refused by the archive's primary key, and the archive is append-only
        await expect(
          c.query(
            `INSERT INTO audit.audit_event_archive (${COLUMNS}, archived_at) SELECT ${COLUMNS}, now() FROM audit.audit_event_archive WHERE id = $1`,
            [id],
          ),
        ).rejects.toThrow(/duplicate key/);
        await expect(c.query(`DELETE FROM audit.audit_event_archive WHERE id = $1`, [id])).rejects.toThrow(/append-only/);
      } finally {
        await c.end();
      }
      // the chain still verifies across archive + live rows, and a republish of the archived id is absorbed
      expect(await readChain(ds, org)).toMatchObject({ ok: true, headSeq: 2, rows: 2 });
      const [archived] = await ds.query(`SELECT event FROM audit_event_archive WHERE id = $1`, [id]);
      expect(await writer.append([archived.event as AuditEvent])).toEqual({ inserted: 0, duplicates: 1 });
    });

    it('a superuser in replica mode cannot change the archive, checkpoints or signing keys either', async () => {
      await su.query(
        `INSERT INTO audit.audit_checkpoint (id, chain_id, seq, head_hash, signed_at, key_id, signature) VALUES ($1, $2, 1, $3, now(), 'k', 's')`,
        [randomUUID(), org, '0'.repeat(64)],
      );
      await su.query(`INSERT INTO audit.audit_signing_key (kid, public_key, private_key_sealed) VALUES ($1, 'p', 's')`, [randomUUID()]);
      const c = new Client({ connectionString: db.url, options: '-c session_replication_role=replica' });
      await c.connect();
      try {
        for (const [table, column] of [
          ['audit_event_archive', 'seq'],
          ['audit_checkpoint', 'seq'],
          ['audit_signing_key', 'kid'],
        ]) {
          expect((await c.query(`SELECT count(*)::int AS n FROM audit.${table}`)).rows[0].n).toBeGreaterThan(0);
          await expect(c.query(`UPDATE audit.${table} SET ${column} = ${column}`)).rejects.toThrow(/append-only: UPDATE/);
          await expect(c.query(`DELETE FROM audit.${table}`)).rejects.toThrow(/append-only: DELETE/);
          await expect(c.query(`TRUNCATE audit.${table}`)).rejects.toThrow(/append-only: TRUNCATE/);
        }
      } finally {
        await c.end();
      }
    });
  });

  it('migrating down refuses while archived rows exist (they exist nowhere else)', async () => {
    expect(Number((await ds.query(`SELECT count(*) AS n FROM audit_event_archive`))[0].n)).toBeGreaterThan(0);
    await ds.undoLastMigration({ transaction: 'each' }); // the dead-letter guard goes down; the chain is next
    await expect(ds.undoLastMigration({ transaction: 'each' })).rejects.toThrow(/archived audit rows/);
    expect(await ds.query(`SELECT count(*)::int AS n FROM audit_event`)).toEqual([{ n: expect.any(Number) }]);
  });
});

describe('audit store: migrating a log stored before the chain existed', () => {
  it('chains the existing rows per org; down drops the triggers first and goes through with rows present', async () => {
    const db = await createTestDatabase('audit_migrate');
    try {
      await provisionServiceSchema(db.url, 'audit');
      const old = createServiceDataSource({ url: db.url, service: 'audit', entities: [], migrations: [SERVICE_MIGRATIONS[0]] });
      await old.initialize();
      await runMigrationsLocked(old, 'audit');
      const org = randomUUID();
      for (const e of [auditEvent(org), auditEvent(org), auditEvent(null), auditEvent(org, { details: { name: 'bell\u0007' } })]) {
        await old.query(
          `INSERT INTO audit_event (id, org_id, occurred_at, service, action, outcome, event) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
          [e.id, e.orgId, e.occurredAt, e.service, e.action, e.outcome, JSON.stringify(e)],
        );
      }
      await old.destroy();
      const ds2 = createServiceDataSource({ url: db.url, service: 'audit', entities: SERVICE_ENTITIES, migrations: SERVICE_MIGRATIONS });
      await ds2.initialize();
      try {
        await runMigrationsLocked(ds2, 'audit');
        expect(await readChain(ds2, org)).toMatchObject({ ok: true, headSeq: 3 });
        expect(await readChain(ds2, '00000000-0000-0000-0000-000000000000')).toMatchObject({ ok: true, headSeq: 1 });
        await expect(ds2.query(`DELETE FROM audit_event`)).rejects.toThrow(/append-only/);
        await ds2.undoLastMigration({ transaction: 'each' }); // the dead-letter guard
        await ds2.undoLastMigration({ transaction: 'each' }); // the chain
        expect(await ds2.query(`SELECT count(*)::int AS n FROM audit_event`)).toEqual([{ n: 4 }]);
        await runMigrationsLocked(ds2, 'audit');
        expect(await readChain(ds2, org)).toMatchObject({ ok: true, headSeq: 3 });
      } finally {
        await ds2.destroy();
      }
    } finally {
      await db.drop();
    }
  });
});

const COLUMNS =
  'id, org_id, chain_id, seq, prev_hash, row_hash, occurred_at, received_at, service, action, outcome, actor_user_id, target_type, target_id, event';
