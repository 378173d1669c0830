import { randomBytes, randomUUID } from 'node:crypto';
import { AuditEventRecorded, type AuditEvent } from '@custodian/contracts';
import { DEFAULT_MAX_BACKLOG, MetricsService, NatsBus, OutboxRelay, OutboxWriter } from '@custodian/platform';
import { Client } from 'pg';
import pino from 'pino';
import { AuditStoreConsumer } from '../../apps/audit/src/store/audit-store.consumer';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { pollUntil } from '../support/poll';
import { auditEvent, startAuditHost, type AuditHost } from './audit-harness';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const MAX_LAG = 5;

/**
 * F5 over NATS: JetStream would buffer a slow audit store without limit, so relays watch the store
 * consumer's lag and stop publishing above CUSTODIAN_AUDIT_MAX_LAG; the outbox then backs up and
 * the API answers 503 `audit_backlog` with Retry-After until the store catches up. Nothing is lost.
 */
describe('audit backpressure over NATS', () => {
  let db: TestDatabase;
  let bus: NatsBus;
  let a: AuditHost;
  let pg: Client;
  let token: string;
  const namespace = `auditlag_${randomBytes(4).toString('hex')}`;

  const archive = (): Promise<Response> =>
    fetch(`${a.host.url}/api/v1/audit/archive`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ before: new Date(Date.now() - 86_400_000).toISOString() }),
    });
  const count = async (sql: string, params: unknown[] = []): Promise<number> => (await pg.query(sql, params)).rows[0].n as number;
  const unsent = (): Promise<number> => count(`SELECT count(*)::int AS n FROM audit.outbox WHERE published_at IS NULL`);

  beforeAll(async () => {
    db = await createTestDatabase('audit_backpressure', { migrated: true });
    bus = await NatsBus.connect({ url: NATS_URL, namespace, name: 'audit-backpressure-test' }, pino({ level: 'silent' }));
    a = await startAuditHost(db.url, { bus, env: { CUSTODIAN_AUDIT_MAX_LAG: String(MAX_LAG) } });
    token = await a.tokenFor({ userId: randomUUID(), orgId: randomUUID(), capabilities: ['view_audit', 'manage_audit'] });
    pg = new Client({ connectionString: db.url });
    await pg.connect();
  });

  afterAll(async () => {
    await pg?.end();
    await a?.stop();
    await bus?.deleteStream();
  });

  it('a lagging store pauses the relay, the API answers 503 + Retry-After, and after it catches up everything is stored once', async () => {
    const relay = a.host.app.get(OutboxRelay, { strict: false });
    const writer = a.host.app.get(OutboxWriter, { strict: false });
    const metrics = a.host.app.get(MetricsService);
    const store = a.host.app.get(AuditStoreConsumer);

    // The store slows to a halt: deliveries arrive but none is acknowledged until the gate opens.
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const real = store.writer;
    Object.defineProperty(store, 'writer', {
      configurable: true,
      value: { append: async (events: AuditEvent[]) => (await gate, real.append(events)) },
    });
    writer.setMaxBacklog(3);
    try {
      // Other producers keep publishing.
      const published = Array.from({ length: MAX_LAG * 2 }, () => auditEvent(randomUUID()));
      for (const e of published) await bus.publish(AuditEventRecorded, e, { messageId: e.id });
      await pollUntil(() => relay.paused, { what: 'relay paused for lag' });
      expect(await metrics.registry.getSingleMetricAsString('custodian_outbox_relay_paused')).toMatch(/service="audit"[^}]*} 1/);
      const lag = await metrics.registry.getSingleMetricAsString('custodian_audit_consumer_lag');
      expect(Number(/custodian_audit_consumer_lag\{[^}]*} (\d+)/.exec(lag)?.[1])).toBeGreaterThanOrEqual(MAX_LAG);

      // Changes still commit (their audit rows wait in the outbox) until the backlog reaches its limit: then 503.
      const refused = await pollUntil(
        async () => {
          const res = await archive();
          if (res.status === 503) return res;
          expect(res.status).toBe(200);
          return undefined;
        },
        { what: '503 from the API' },
      );
      expect(refused.headers.get('retry-after')).toBe('1');
      // The body says why: operators (and clients) can tell the audit backlog from an outage.
      const body = (await refused.json()) as { code: string; detail: string; details: { unsent: number; limit: number } };
      expect(body.code).toBe('audit_backlog');
      expect(body.detail).toMatch(/^audit backlog: \d+ unsent events \(limit 3\)/);
      expect(body.details).toEqual({ unsent: expect.any(Number), limit: 3 });
      const waiting = await unsent();
      expect(waiting).toBeGreaterThanOrEqual(3);
      expect(relay.paused).toBe(true);

      // The store catches up: the relay resumes by itself, the outbox drains and changes go through again.
      open();
      await pollUntil(async () => !relay.paused && (await unsent()) === 0, { what: 'relay resumed and outbox drained', timeoutMs: 20_000 });
      await pollUntil(async () => (await archive()).status === 200, { what: 'API accepts changes again' });

      const outboxIds = (await pg.query<{ id: string }>(`SELECT id FROM audit.outbox`)).rows.map((r) => r.id);
      const expected = [...published.map((e) => e.id), ...outboxIds];
      await pollUntil(
        async () =>
          (await count(`SELECT count(*)::int AS n FROM audit.audit_event WHERE id = ANY($1::uuid[])`, [expected])) === expected.length,
        {
          what: 'every event stored',
        },
      );
      expect(await count(`SELECT count(*)::int AS n FROM (SELECT id FROM audit.audit_event GROUP BY id HAVING count(*) > 1) d`)).toBe(0);
      expect(await count(`SELECT count(*)::int AS n FROM audit.audit_dead_letter`)).toBe(0);
    } finally {
      open();
      writer.setMaxBacklog(DEFAULT_MAX_BACKLOG);
    }
  });
});
