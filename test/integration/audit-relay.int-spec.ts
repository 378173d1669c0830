import { randomBytes, randomUUID } from 'node:crypto';
import { AuditEventRecorded, type AuditEvent } from '@custodian/contracts';
import {
  InProcessBus,
  MetricsService,
  NatsBus,
  OutboxBackpressureError,
  OutboxRelay,
  OutboxWriter,
  createServiceDataSource,
  provisionServiceSchema,
  runMigrationsLocked,
  type Bus,
} from '@custodian/platform';
import { connect, type NatsConnection } from 'nats';
import pino from 'pino';
import type { DataSource } from 'typeorm';
import { SERVICE_ENTITIES } from '../../apps/audit/src/entities';
import { SERVICE_MIGRATIONS } from '../../apps/audit/src/migrations';
import { reconcile } from '../../apps/audit/src/reconcile/reconcile';
import { AuditChainWriter } from '../../apps/audit/src/store/audit-chain.writer';
import { AuditStoreConsumer, DEAD_LETTER_AFTER } from '../../apps/audit/src/store/audit-store.consumer';
import { readChain } from '../../apps/audit/src/verify/chain-reader';
import { runCustodian } from '../support/cli';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { pollUntil } from '../support/poll';
import { auditEvent } from './audit-harness';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const logger = pino({ level: 'silent' });

/** The relay's guarantees (A8, all-in-one no-loss) and the store's dead letters and reconciliation (A9). */
describe('outbox relay → bus → audit store', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let store: AuditChainWriter;
  const outbox = new OutboxWriter('objects');
  const org = randomUUID();

  const record = (overrides: Partial<AuditEvent> = {}): Promise<AuditEvent> =>
    ds.transaction((m) =>
      outbox.append(m, { orgId: org, action: 'record.created', outcome: 'success', target: { type: 'account' }, ...overrides }),
    );
  const storedCount = async (id: string): Promise<number> =>
    (await ds.query(`SELECT count(*)::int AS n FROM audit_event WHERE id = $1`, [id]))[0].n as number;
  const unsent = async (id: string): Promise<boolean> =>
    (await ds.query(`SELECT published_at IS NULL AS u FROM outbox WHERE id = $1`, [id]))[0].u as boolean;

  beforeAll(async () => {
    db = await createTestDatabase('audit_relay', { migrated: true });
    await provisionServiceSchema(db.url, 'audit');
    ds = createServiceDataSource({ url: db.url, service: 'audit', entities: SERVICE_ENTITIES, migrations: SERVICE_MIGRATIONS });
    await ds.initialize();
    await runMigrationsLocked(ds, 'audit');
    store = new AuditChainWriter(ds);
  });

  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  describe('A8 on NATS: the relay dies after publishing, before marking', () => {
    let bus: NatsBus;
    let nc: NatsConnection;
    let relay: OutboxRelay;
    const namespace = `auditrelay_${randomBytes(4).toString('hex')}`;
    const WINDOW_MS = 1000;
    const streamMessages = async (): Promise<number> => (await (await nc.jetstreamManager()).streams.info(bus.streamName)).state.messages;
    const consumerIdle = async (): Promise<boolean> => {
      const info = await (await nc.jetstreamManager()).consumers.info(bus.streamName, `${namespace}_audit-store`);
      return info.num_pending === 0 && info.num_ack_pending === 0;
    };

    beforeAll(async () => {
      bus = await NatsBus.connect({ url: NATS_URL, namespace, name: 'audit-relay-test', duplicateWindowMs: WINDOW_MS }, logger);
      nc = await connect({ servers: NATS_URL });
      await bus.subscribe(AuditEventRecorded, 'audit-store', async (e) => {
        await store.append([e]);
      });
      relay = new OutboxRelay(ds, bus, outbox, logger);
    });

    afterAll(async () => {
      await bus?.deleteStream();
      await bus?.drain();
      await nc?.close();
    });

    it('within the dedupe window the republish is absorbed by the message id', async () => {
      const e = await record();
      await bus.publish(AuditEventRecorded, e, { messageId: e.id }); // the relay's first life, which then died
      const before = await streamMessages();
      expect(await relay.relayOnce()).toBe(1);
      expect(await unsent(e.id)).toBe(false);
      expect(await streamMessages()).toBe(before);
      await pollUntil(async () => (await storedCount(e.id)) === 1 && (await consumerIdle()), { what: 'stored once' });
    });

    it('after the dedupe window the republish reaches the store, whose unique key absorbs it: one row, no gap', async () => {
      const e = await record();
      await bus.publish(AuditEventRecorded, e, { messageId: e.id });
      await pollUntil(async () => (await storedCount(e.id)) === 1, { what: 'first copy stored' });
      const before = await streamMessages();
      const windowOver = Date.now() + WINDOW_MS + 200;
      await pollUntil(() => Date.now() > windowOver, { what: 'dedupe window to pass', intervalMs: 50 });
      expect(await relay.relayOnce()).toBe(1);
      expect(await streamMessages()).toBe(before + 1); // JetStream took it: only the store can absorb it now
      await pollUntil(consumerIdle, { what: 'duplicate consumed' });
      expect(await storedCount(e.id)).toBe(1);
      expect(await readChain(ds, org)).toMatchObject({ ok: true });
    });
  });

  describe('NatsBus subscribe with concurrency (used by the audit store)', () => {
    it('runs up to N handlers at once, acks each after its own handler, and redelivers only the failed one', async () => {
      const namespace = `auditconc_${randomBytes(4).toString('hex')}`;
      const bus = await NatsBus.connect({ url: NATS_URL, namespace, name: 'audit-concurrency-test' }, logger);
      const nc = await connect({ servers: NATS_URL });
      try {
        let running = 0;
        let peak = 0;
        const seen = new Map<string, number>();
        const events = Array.from({ length: 24 }, () => auditEvent(org));
        const poison = events[5].id;
        let release: () => void = () => undefined;
        const gate = new Promise<void>((r) => (release = r));
        await bus.subscribe(
          AuditEventRecorded,
          'conc',
          async (e) => {
            seen.set(e.id, (seen.get(e.id) ?? 0) + 1);
            running++;
            peak = Math.max(peak, running);
            if (running >= 8) release();
            await gate;
            running--;
            if (e.id === poison && seen.get(e.id) === 1) throw new Error('fails once');
          },
          { concurrency: 8 },
        );
        for (const e of events) await bus.publish(AuditEventRecorded, e, { messageId: e.id });
        await pollUntil(
          async () => {
            const info = await (await nc.jetstreamManager()).consumers.info(bus.streamName, `${namespace}_conc`);
            return seen.size === events.length && info.num_pending === 0 && info.num_ack_pending === 0;
          },
          { what: 'all handled and acked' },
        );
        expect(peak).toBe(8);
        expect(seen.get(poison)).toBe(2);
        expect([...seen.entries()].filter(([id, n]) => id !== poison && n !== 1)).toEqual([]);
      } finally {
        await bus.deleteStream();
        await bus.drain();
        await nc.close();
      }
    });
  });

  describe('all-in-one (in-process bus): a row is marked only after the store has it', () => {
    const subscribeStore = async (bus: Bus, behaviour: () => Promise<void> = async () => undefined): Promise<void> =>
      bus.subscribe(AuditEventRecorded, 'audit-store', async (e) => {
        await behaviour();
        await store.append([e]);
      });

    it('a store that keeps failing leaves the row unsent; the retry after it recovers stores it once', async () => {
      const bus = new InProcessBus(logger, { retryBaseMs: 1 });
      let failing = true;
      await subscribeStore(bus, async () => {
        if (failing) throw new Error('database down');
      });
      const relay = new OutboxRelay(ds, bus, outbox, logger, { ackTimeoutMs: 5000 });
      const e = await record();
      await expect(relay.relayOnce()).rejects.toThrow(/not yet acknowledged/);
      expect(await unsent(e.id)).toBe(true);
      failing = false;
      expect(await relay.relayOnce()).toBeGreaterThanOrEqual(1);
      expect(await unsent(e.id)).toBe(false);
      expect(await storedCount(e.id)).toBe(1);
      await bus.drain();
    });

    it('with no consumer yet nothing is marked; once the store subscribes the event arrives once', async () => {
      const bus = new InProcessBus(logger, { retryBaseMs: 1 });
      const relay = new OutboxRelay(ds, bus, outbox, logger, { ackTimeoutMs: 50 });
      const e = await record();
      await expect(relay.relayOnce()).rejects.toThrow(/not yet acknowledged/);
      expect(await unsent(e.id)).toBe(true);
      await subscribeStore(bus);
      expect(await relay.relayOnce()).toBeGreaterThanOrEqual(1);
      expect(await unsent(e.id)).toBe(false);
      expect(await storedCount(e.id)).toBe(1);
      await bus.drain();
    });

    it('the process dies between publish and store: the next process relays the row again, stored once', async () => {
      const dying = new InProcessBus(logger, { retryBaseMs: 1, drainTimeoutMs: 10 });
      await subscribeStore(dying, () => new Promise<void>(() => undefined)); // hangs: the process dies here
      const e = await record();
      await expect(new OutboxRelay(ds, dying, outbox, logger, { ackTimeoutMs: 50 }).relayOnce()).rejects.toThrow();
      await dying.drain();
      expect(await unsent(e.id)).toBe(true);
      const next = new InProcessBus(logger, { retryBaseMs: 1 });
      await subscribeStore(next);
      expect(await new OutboxRelay(ds, next, outbox, logger).relayOnce()).toBeGreaterThanOrEqual(1);
      expect(await storedCount(e.id)).toBe(1);
      await next.drain();
    });
  });

  describe('A9: dead letters and reconciliation', () => {
    it('a poison event is dead-lettered with an alert metric, the relay moves on, and reconciliation reports the gap', async () => {
      const bus = new InProcessBus(logger, { retryBaseMs: 1 });
      const metrics = new MetricsService({});
      const consumer = new AuditStoreConsumer(bus, ds, metrics, logger);
      await consumer.onApplicationBootstrap();
      const relay = new OutboxRelay(ds, bus, outbox, logger);
      const poison = await record({ details: { at: 'x' }, action: 'record.poison' });
      // The database refuses this timestamp (year 0): a data error no retry can fix.
      await ds.query(`UPDATE outbox SET payload = jsonb_set(payload, '{occurredAt}', '"0000-01-01T00:00:00Z"') WHERE id = $1`, [poison.id]);
      const fine = await record();
      expect(await relay.relayOnce()).toBe(2);
      expect(await storedCount(fine.id)).toBe(1);
      expect(await storedCount(poison.id)).toBe(0);
      const [dl] = await ds.query(`SELECT message_id, deliveries FROM audit_dead_letter WHERE message_id = $1`, [poison.id]);
      expect(dl).toMatchObject({ message_id: poison.id });
      expect(await metrics.registry.getSingleMetricAsString('custodian_audit_dead_letters_total')).toMatch(/service="objects"} 1/);

      const report = await reconcile(ds, { schemas: ['audit'], graceMs: 0 });
      expect(report.missing.map((m) => m.id)).toContain(poison.id);
      expect(report.missing.map((m) => m.id)).not.toContain(fine.id);
      expect(report.deadLettered).toBeGreaterThanOrEqual(1);
      await bus.drain();
    });

    it('an outbox row that no longer matches the contract is skipped (reported as stuck), not blocking the rows after it', async () => {
      const bus = new InProcessBus(logger, { retryBaseMs: 1 });
      await bus.subscribe(AuditEventRecorded, 'audit-store', async (e) => {
        await store.append([e]);
      });
      const badId = randomUUID();
      await ds.query(
        `INSERT INTO outbox (id, subject, payload, created_at) VALUES ($1, 'evt.audit.recorded', '{"id": 1}', now() - interval '1 hour')`,
        [badId],
      );
      const fine = await record();
      const relay = new OutboxRelay(ds, bus, outbox, logger);
      expect(await relay.relayOnce()).toBeGreaterThanOrEqual(1);
      expect(await unsent(fine.id)).toBe(false);
      expect(await unsent(badId)).toBe(true);
      expect((await reconcile(ds, { schemas: ['audit'], graceMs: 1000 })).unpublished.audit).toBeGreaterThanOrEqual(1);
      await bus.drain();
    });

    it('the reconcile command reports the gaps and stuck rows with exit code 1', async () => {
      const { code, stdout } = await runCustodian([
        'audit',
        'reconcile',
        '--database-url',
        db.url,
        '--schemas',
        'audit',
        '--grace-seconds',
        '0',
      ]);
      expect(code).toBe(1);
      const report = JSON.parse(stdout) as { missing: Array<{ id: string }>; deadLettered: number };
      expect(report.missing.length).toBeGreaterThan(0);
      expect(report.deadLettered).toBeGreaterThan(0);
    });

    it(`an event that fails ${DEAD_LETTER_AFTER} deliveries for any reason is dead-lettered instead of blocking the stream`, async () => {
      const consumer = new AuditStoreConsumer(new InProcessBus(logger), ds, new MetricsService({}), logger);
      const e = { ...(await record()), action: 'record.stuck' };
      Object.defineProperty(consumer, 'writer', { value: { append: () => Promise.reject(new Error('lock timeout')) } });
      await expect(consumer.handle(e, { messageId: e.id, deliveryCount: DEAD_LETTER_AFTER - 1 })).rejects.toThrow(/lock timeout/);
      await expect(consumer.handle(e, { messageId: e.id, deliveryCount: DEAD_LETTER_AFTER })).resolves.toBeUndefined();
      expect((await ds.query(`SELECT count(*)::int AS n FROM audit_dead_letter WHERE message_id = $1`, [e.id]))[0].n).toBe(1);
    });
  });

  describe('a pass claims and marks its rows in one statement', () => {
    type Settled = Array<PromiseSettledResult<void>>;
    type Sent = ReadonlyArray<{ messageId: string }>;
    const fulfilled: PromiseSettledResult<void> = { status: 'fulfilled', value: undefined };
    const rejected = (): PromiseSettledResult<void> => ({ status: 'rejected', reason: new Error('no PubAck') });
    const attemptsOf = async (id: string): Promise<number> =>
      (await ds.query(`SELECT attempts FROM outbox WHERE id = $1`, [id]))[0].attempts as number;

    it('rows whose publish failed are unmarked before the commit, with the attempt counted; the rest stay marked', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push((await record()).id);
      const order: string[] = [];
      // Every second row of ours fails; rows earlier cases left stuck fail too, so they stay as they were.
      const bus = {
        publishMany: async (_c: unknown, events: Sent): Promise<Settled> =>
          events.map(({ messageId }) => {
            order.push(messageId);
            const i = ids.indexOf(messageId);
            return i >= 0 && i % 2 === 0 ? fulfilled : rejected();
          }),
      } as unknown as Bus;
      expect(await new OutboxRelay(ds, bus, outbox, logger).relayOnce()).toBe(3);
      expect(order.filter((id) => ids.includes(id))).toEqual(ids); // published in outbox order
      for (const [i, id] of ids.entries()) {
        expect(await unsent(id)).toBe(i % 2 === 1);
        expect(await attemptsOf(id)).toBe(i % 2 === 1 ? 1 : 0);
      }
      const retry = { publishMany: async (_c: unknown, events: Sent): Promise<Settled> => events.map(() => fulfilled) } as unknown as Bus;
      await new OutboxRelay(ds, retry, outbox, logger).relayOnce();
      for (const id of ids) expect(await unsent(id)).toBe(false);
    });

    it('while a pass publishes, others see its rows unsent and another relay skips them', async () => {
      const ids = [(await record()).id, (await record()).id];
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let entered!: () => void;
      const publishing = new Promise<void>((r) => (entered = r));
      const slow = {
        publishMany: async (_c: unknown, events: Sent): Promise<Settled> => {
          entered();
          await gate;
          return events.map(({ messageId }) => (ids.includes(messageId) ? fulfilled : rejected()));
        },
      } as unknown as Bus;
      const seen: string[] = [];
      const other = {
        publishMany: async (_c: unknown, events: Sent): Promise<Settled> => {
          seen.push(...events.map((e) => e.messageId));
          return events.map(() => rejected());
        },
      } as unknown as Bus;
      const first = new OutboxRelay(ds, slow, outbox, logger).relayOnce();
      await publishing;
      expect(await Promise.all(ids.map(unsent))).toEqual([true, true]); // marked, but not committed
      await new OutboxRelay(ds, other, outbox, logger).relayOnce().catch(() => 0);
      expect(seen.filter((id) => ids.includes(id))).toEqual([]);
      release();
      expect(await first).toBe(2);
      expect(await Promise.all(ids.map(unsent))).toEqual([false, false]);
    });
  });

  describe('F5: the backlog the writer pushes back on', () => {
    it('a full pass counts every unsent row; a pass that saw them all reports only those it could not send', async () => {
      const unsentRows = async (): Promise<number> =>
        (await ds.query(`SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL`))[0].n as number;
      const writer = new OutboxWriter('objects');
      const before = await unsentRows(); // rows earlier cases left stuck on purpose
      writer.setMaxBacklog(before + 3);
      const append = (): Promise<AuditEvent> =>
        ds.transaction((m) => writer.append(m, { orgId: org, action: 'record.created', outcome: 'success', target: { type: 'account' } }));
      // Five rows no version of the contract accepts: they stay unsent.
      const stuck = Array.from({ length: 5 }, () => randomUUID());
      for (const id of stuck)
        await ds.query(`INSERT INTO outbox (id, subject, payload) VALUES ($1, 'evt.audit.recorded', '{"id": 1}')`, [id]);
      const bus = new InProcessBus(logger, { retryBaseMs: 1 });
      await bus.subscribe(AuditEventRecorded, 'audit-store', async (e) => {
        await store.append([e]);
      });
      try {
        // A pass of 2 is full: more may wait, so it counts them all (before + 5 ≥ the limit).
        await new OutboxRelay(ds, bus, writer, logger, { batchSize: 2, backlogCountIntervalMs: 0 }).relayOnce();
        await expect(append()).rejects.toBeInstanceOf(OutboxBackpressureError);
        // The pipeline catches up; a pass that sees every unsent row reports what it could not send.
        await ds.query(`UPDATE outbox SET published_at = now() WHERE id = ANY($1::uuid[])`, [stuck]);
        await new OutboxRelay(ds, bus, writer, logger, { batchSize: 1000 }).relayOnce();
        const accepted = await append();
        expect(await unsent(accepted.id)).toBe(true);
      } finally {
        await ds.query(`UPDATE outbox SET published_at = now() WHERE id = ANY($1::uuid[])`, [stuck]);
        await bus.drain();
      }
    });
  });
});
