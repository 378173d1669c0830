import { randomBytes, randomUUID } from 'node:crypto';
import { AuditEventRecorded, type EventContract } from '@custodian/contracts';
import {
  InProcessBus,
  MAX_DELIVER,
  MetricsService,
  NatsBus,
  createServiceDataSource,
  provisionServiceSchema,
  runMigrationsLocked,
  type Bus,
  type DeadLetterInfo,
} from '@custodian/platform';
import { Type } from '@sinclair/typebox';
import { connect, type NatsConnection } from 'nats';
import { Client } from 'pg';
import pino from 'pino';
import type { DataSource } from 'typeorm';
import { SERVICE_ENTITIES } from '../../apps/audit/src/entities';
import { SERVICE_MIGRATIONS } from '../../apps/audit/src/migrations';
import { AUDIT_STORE_DURABLE, AuditStoreConsumer } from '../../apps/audit/src/store/audit-store.consumer';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { pollUntil } from '../support/poll';
import { auditEvent } from './audit-harness';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const logger = pino({ level: 'silent' });
/** The audit event subject with no schema: lets a test publish what the real contract refuses. */
const Loose: EventContract = { ...AuditEventRecorded, payload: Type.Any() };

interface DeadLetterRow {
  message_id: string;
  payload: string;
  payload_encoding: string;
  reason: string;
  subject: string | null;
  stream_seq: string | null;
  deliveries: number;
  error: string;
}

/** A9: what a consumer cannot take is handed to its dead-letter hook by both transports, and the audit store keeps it. */
describe('dead letters', () => {
  let db: TestDatabase;
  let ds: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase('audit_dead_letters', { migrated: true });
    await provisionServiceSchema(db.url, 'audit');
    ds = createServiceDataSource({ url: db.url, service: 'audit', entities: SERVICE_ENTITIES, migrations: SERVICE_MIGRATIONS });
    await ds.initialize();
    await runMigrationsLocked(ds, 'audit');
  });

  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  const deadLetter = async (messageId: string): Promise<DeadLetterRow | undefined> =>
    (await ds.query(`SELECT * FROM audit_dead_letter WHERE message_id = $1`, [messageId]))[0] as DeadLetterRow | undefined;
  const storedCount = async (id: string): Promise<number> =>
    (await ds.query(`SELECT count(*)::int AS n FROM audit_event WHERE id = $1`, [id]))[0].n as number;

  describe.each([
    ['in-process', (): Promise<Bus> => Promise.resolve(new InProcessBus(logger, { retryBaseMs: 1 }))],
    [
      'NATS',
      (): Promise<Bus> =>
        NatsBus.connect(
          { url: NATS_URL, namespace: `dl_${randomBytes(4).toString('hex')}`, name: 'dead-letter-test', nakBaseMs: 1 },
          logger,
        ),
    ],
  ])('the bus hook (%s)', (_name, open) => {
    let bus: Bus;
    beforeAll(async () => {
      bus = await open();
    });
    afterAll(async () => {
      if (bus instanceof NatsBus) await bus.deleteStream();
      await bus?.drain();
    });

    it('hands over a payload that breaks its contract, raw, and the consumer goes on', async () => {
      const kept: Array<{ raw: string; info: DeadLetterInfo }> = [];
      const handled: string[] = [];
      let failHook = true;
      await bus.subscribe(AuditEventRecorded, `hook-invalid`, async (e) => void handled.push(e.id), {
        onDeadLetter: async (raw, info) => {
          if (failHook) {
            failHook = false;
            throw new Error('database down'); // the hook failing once: delivered again, kept the second time
          }
          kept.push({ raw: Buffer.from(raw).toString('utf8'), info });
        },
      });
      const badId = randomUUID();
      await bus.publish(Loose, { id: 1, poison: true }, { messageId: badId });
      const fine = auditEvent(randomUUID());
      await bus.publish(AuditEventRecorded, fine, { messageId: fine.id });
      await pollUntil(() => kept.length === 1 && handled.includes(fine.id), { what: 'poison kept, valid event handled' });
      expect(JSON.parse(kept[0].raw)).toEqual({ id: 1, poison: true });
      expect(kept[0].info).toMatchObject({ reason: 'invalid', subject: AuditEventRecorded.subject, messageId: badId });
      expect(kept[0].info.streamSeq).toBeGreaterThan(0);
      expect(kept[0].info.detail).toMatch(/\S/);
    });

    it(`hands over an event whose handler failed ${MAX_DELIVER} times`, async () => {
      const kept: DeadLetterInfo[] = [];
      let deliveries = 0;
      const e = auditEvent(randomUUID());
      await bus.subscribe(
        AuditEventRecorded,
        'hook-exhausted',
        async (event) => {
          if (event.id !== e.id) return;
          deliveries++;
          throw new Error('always fails');
        },
        { onDeadLetter: async (_raw, info) => void (info.messageId === e.id && kept.push(info)) },
      );
      await bus.publish(AuditEventRecorded, e, { messageId: e.id });
      await pollUntil(() => kept.length === 1, { what: 'exhausted event kept', timeoutMs: 20_000 });
      expect(deliveries).toBe(MAX_DELIVER);
      expect(kept[0]).toMatchObject({ reason: 'exhausted', messageId: e.id, deliveryCount: MAX_DELIVER, detail: 'always fails' });
    });
  });

  describe('the audit store on NATS', () => {
    let bus: NatsBus;
    let nc: NatsConnection;
    let metrics: MetricsService;
    const namespace = `dlstore_${randomBytes(4).toString('hex')}`;
    const subject = `${namespace}.${AuditEventRecorded.subject}`;
    const consumerIdle = async (): Promise<boolean> => {
      const info = await (await nc.jetstreamManager()).consumers.info(bus.streamName, `${namespace}_${AUDIT_STORE_DURABLE}`);
      return info.num_pending === 0 && info.num_ack_pending === 0;
    };

    beforeAll(async () => {
      bus = await NatsBus.connect({ url: NATS_URL, namespace, name: 'dead-letter-store-test' }, logger);
      nc = await connect({ servers: NATS_URL });
      metrics = new MetricsService({});
      await new AuditStoreConsumer(bus, ds, metrics, logger).onApplicationBootstrap();
    });

    afterAll(async () => {
      await bus?.deleteStream();
      await bus?.drain();
      await nc?.close();
    });

    it('dead-letters a message that breaks the contract (text and binary) with subject, stream position and an alert, then terminates it', async () => {
      const js = nc.jetstream();
      const textId = randomUUID();
      const binaryId = randomUUID();
      const text = JSON.stringify({ id: 'not-a-uuid', service: 'objects', action: 'record.created' });
      const textAck = await js.publish(subject, Buffer.from(text), { msgID: textId });
      const binaryAck = await js.publish(subject, Uint8Array.from([0xff, 0x00, 0xfe, 0x7b]), { msgID: binaryId });
      const fine = auditEvent(randomUUID());
      await bus.publish(AuditEventRecorded, fine, { messageId: fine.id });

      const row = await pollUntil(() => deadLetter(textId), { what: 'text poison dead-lettered' });
      expect(row).toMatchObject({
        payload: text,
        payload_encoding: 'text',
        reason: 'invalid',
        subject: AuditEventRecorded.subject,
        stream_seq: String(textAck.seq),
        deliveries: 1,
      });
      const binary = await pollUntil(() => deadLetter(binaryId), { what: 'binary poison dead-lettered' });
      expect(binary).toMatchObject({ payload_encoding: 'base64', reason: 'invalid', stream_seq: String(binaryAck.seq) });
      expect(Buffer.from(binary.payload, 'base64')).toEqual(Buffer.from([0xff, 0x00, 0xfe, 0x7b]));

      await pollUntil(async () => (await storedCount(fine.id)) === 1 && (await consumerIdle()), {
        what: 'valid event stored, poison settled',
      });
      const metric = await metrics.registry.getSingleMetricAsString('custodian_audit_dead_letters_total');
      expect(metric).toMatch(/service="objects"[^}]*} 1/);
      expect(metric).toMatch(/service="unknown"[^}]*} 1/);
    });

    it('a redelivered dead letter keeps its first row and is counted once', async () => {
      const consumer = new AuditStoreConsumer(bus, ds, new MetricsService({}), logger);
      const info: DeadLetterInfo = {
        reason: 'invalid',
        subject: AuditEventRecorded.subject,
        messageId: randomUUID(),
        streamSeq: 7,
        deliveryCount: 1,
        detail: 'first',
      };
      await consumer.keepRaw(Buffer.from('{}'), info);
      await consumer.keepRaw(Buffer.from('{"other":1}'), { ...info, deliveryCount: 2, detail: 'second' });
      expect(await deadLetter(info.messageId)).toMatchObject({ payload: '{}', error: 'first', deliveries: 1 });
    });
  });

  describe('the dead-letter table is append-only except for marking a row resolved', () => {
    const id = randomUUID();
    beforeAll(async () => {
      await ds.query(
        `INSERT INTO audit_dead_letter (message_id, payload, reason, error, deliveries) VALUES ($1, '{}', 'invalid', 'x', 1)`,
        [id],
      );
    });

    it.each([
      ['the service (owner) role', '-c role=custodian_audit'],
      ['a superuser', ''],
      ['a superuser with session_replication_role = replica', '-c session_replication_role=replica'],
    ])('%s: cannot change the payload or other columns, delete or truncate', async (_who, options) => {
      const c = new Client({ connectionString: db.url, options });
      await c.connect();
      try {
        for (const sql of [
          `UPDATE audit.audit_dead_letter SET payload = 'forged' WHERE message_id = '${id}'`,
          `UPDATE audit.audit_dead_letter SET error = 'forged', resolved_at = now() WHERE message_id = '${id}'`,
          `UPDATE audit.audit_dead_letter SET payload_encoding = 'base64' WHERE message_id = '${id}'`,
        ]) {
          await expect(c.query(sql)).rejects.toThrow(/append-only: UPDATE/);
        }
        await expect(c.query(`DELETE FROM audit.audit_dead_letter WHERE message_id = $1`, [id])).rejects.toThrow(/append-only: DELETE/);
        await expect(c.query(`TRUNCATE audit.audit_dead_letter`)).rejects.toThrow(/append-only: TRUNCATE/);
      } finally {
        await c.end();
      }
      expect(await deadLetter(id)).toMatchObject({ payload: '{}', error: 'x' });
    });

    it('the service role inserts and marks a row resolved, once', async () => {
      const c = new Client({ connectionString: db.url, options: '-c role=custodian_audit' });
      await c.connect();
      try {
        const own = randomUUID();
        await c.query(
          `INSERT INTO audit.audit_dead_letter (message_id, payload, reason, error, deliveries) VALUES ($1, 'p', 'invalid', 'e', 1)`,
          [own],
        );
        expect((await c.query(`UPDATE audit.audit_dead_letter SET resolved_at = now() WHERE message_id = $1`, [own])).rowCount).toBe(1);
        await expect(c.query(`UPDATE audit.audit_dead_letter SET resolved_at = now() WHERE message_id = $1`, [own])).rejects.toThrow(
          /append-only: UPDATE/,
        );
        await expect(c.query(`UPDATE audit.audit_dead_letter SET resolved_at = NULL WHERE message_id = $1`, [own])).rejects.toThrow(
          /append-only: UPDATE/,
        );
      } finally {
        await c.end();
      }
    });
  });
});
