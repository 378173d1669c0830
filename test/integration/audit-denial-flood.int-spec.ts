import { randomUUID } from 'node:crypto';
import type { AuditEvent, EventContract, PayloadOf } from '@custodian/contracts';
import { DEFAULT_MAX_BACKLOG, DenialAuditor, InProcessBus, MetricsService, OutboxRelay, OutboxWriter } from '@custodian/platform';
import { Client } from 'pg';
import pino from 'pino';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { pollUntil } from '../support/poll';
import { startAuditHost, type AuditHost } from './audit-harness';

/** An in-process bus whose publishes fail while `down`, so outbox rows stay unsent and the backlog grows. */
class FlakyBus extends InProcessBus {
  down = false;

  override publishMany<E extends EventContract>(
    contract: E,
    events: ReadonlyArray<{ payload: PayloadOf<E>; messageId: string }>,
  ): Promise<Array<PromiseSettledResult<void>>> {
    if (this.down) return Promise.resolve(events.map(() => ({ status: 'rejected', reason: new Error('stream unavailable') })));
    return super.publishMany(contract, events);
  }
}

const BUDGET = 50;

/**
 * Refusals cannot flood the audit pipeline (docs/adr/0014-denial-aggregation.md): identical
 * refusals of one credential become one event with a count, a credential over its refusal budget
 * is answered 429, denial events stop at half the backlog limit (dropped and counted), so one
 * member cannot put every writer into 503; and a 503 says it is the audit backlog.
 */
describe('denials cannot flood the audit outbox', () => {
  let db: TestDatabase;
  let a: AuditHost | undefined;
  let pg: Client;
  let writer: OutboxWriter;
  let relay: OutboxRelay;
  let auditor: DenialAuditor;
  let metrics: MetricsService;
  const bus = new FlakyBus(pino({ level: 'silent' }), { retryBaseMs: 5 });
  const orgId = randomUUID();

  const get = (path: string, token: string): Promise<Response> =>
    fetch(`${host().host.url}/api/v1/${path}`, { headers: { authorization: `Bearer ${token}` } });
  const archive = (token: string): Promise<Response> =>
    fetch(`${host().host.url}/api/v1/audit/archive`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ before: new Date(Date.now() - 86_400_000).toISOString() }),
    });
  const denialRows = async (userId: string): Promise<AuditEvent[]> =>
    (
      await pg.query<{ payload: AuditEvent }>(
        `SELECT payload FROM audit.outbox WHERE payload->>'action' = 'authz.denied' AND payload->'actor'->>'userId' = $1 ORDER BY id`,
        [userId],
      )
    ).rows.map((r) => r.payload);
  const unrecorded = async (): Promise<number> => {
    const text = await metrics.registry.getSingleMetricAsString('custodian_audit_denials_unrecorded_total');
    return [...text.matchAll(/^custodian_audit_denials_unrecorded_total\{[^}]*} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
  };
  /** One relay pass (it fails while the bus is down) so the writer learns the current backlog. */
  const countBacklog = (): Promise<unknown> => relay.relayOnce().catch(() => undefined);

  beforeAll(async () => {
    db = await createTestDatabase('audit_denial_flood', { migrated: true });
    a = await startAuditHost(db.url, {
      bus,
      env: { CUSTODIAN_AUDIT_DENIAL_WINDOW_MS: '60000', CUSTODIAN_AUDIT_DENIAL_BUDGET: String(BUDGET) },
    });
    pg = new Client({ connectionString: db.url });
    await pg.connect();
    writer = host().host.app.get(OutboxWriter, { strict: false });
    relay = host().host.app.get(OutboxRelay, { strict: false });
    auditor = host().host.app.get(DenialAuditor);
    metrics = host().host.app.get(MetricsService);
  });

  afterAll(async () => {
    bus.down = false;
    await pg?.end();
    await a?.stop();
    await db?.drop();
  });

  afterEach(() => {
    bus.down = false;
    writer.setMaxBacklog(DEFAULT_MAX_BACKLOG);
  });

  const host = (): AuditHost => a!;

  it('2,000 refusals of one credential: a bounded number of rows whose counts add up, 429 past the budget, another user still writes', async () => {
    const member = { userId: randomUUID(), orgId, capabilities: ['manage_users'] };
    const memberToken = await host().tokenFor(member);
    const auditor2 = { userId: randomUUID(), orgId, capabilities: ['view_audit', 'manage_audit'] };
    const auditorToken = await host().tokenFor(auditor2);
    bus.down = true;
    writer.setMaxBacklog(100);

    const statuses = new Map<number, number>();
    let limited: Response | undefined;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < 2000) {
        next++;
        const res = await get('audit/events', memberToken);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 429 && !limited) limited = res;
        else await res.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: 20 }, worker));

    // The budget's worth is refused as usual (403); the rest are told to slow down.
    expect(Object.fromEntries(statuses)).toEqual({ 403: BUDGET, 429: 2000 - BUDGET });
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await limited!.json()) as { code: string }).code).toBe('rate_limited');

    // The relay has counted the backlog: the member's refusals left it far below the limit, so another user's change goes through.
    await countBacklog();
    expect((await archive(auditorToken)).status).toBe(200);

    // The window closes: the repeats become one summarizing event; together the rows count every refusal.
    await auditor.flush();
    const rows = await denialRows(member.userId);
    expect(rows.length).toBeLessThanOrEqual(3);
    expect(rows.reduce((n, r) => n + Number(r.details?.count ?? 1), 0)).toBe(2000);
    expect(rows[0]).toMatchObject({ target: { type: 'route', id: 'GET /api/v1/audit/events' }, details: { count: 1 } });
    const summary = rows[rows.length - 1];
    expect(summary.details).toMatchObject({ missingCapabilities: ['view_audit'], layer: 'capability' });
    expect(Date.parse(String(summary.details?.firstAt))).toBeLessThanOrEqual(Date.parse(String(summary.details?.lastAt)));

    // The budget is per credential: another member's first refusal is a plain, audited 403.
    const other = { userId: randomUUID(), orgId, capabilities: [] };
    expect((await get('audit/events', await host().tokenFor(other))).status).toBe(403);
    expect(await denialRows(other.userId)).toHaveLength(1);
  });

  it('denials stop at half the backlog limit (dropped and counted); business writes get 503 only at the limit, and the body says why', async () => {
    const auditorUser = { userId: randomUUID(), orgId, capabilities: ['view_audit', 'manage_audit'] };
    const auditorToken = await host().tokenFor(auditorUser);
    bus.down = true;
    await countBacklog();
    const base = (await pg.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit.outbox WHERE published_at IS NULL`)).rows[0].n;
    writer.setMaxBacklog(base + 20);
    const before = await unrecorded();

    // Many members, one refusal each (no aggregation helps): the denial rows stop at half the limit.
    await pollUntil(
      async () => {
        const member = { userId: randomUUID(), orgId, capabilities: [] };
        expect((await get('audit/events', await host().tokenFor(member))).status).toBe(403);
        await countBacklog();
        return (await unrecorded()) > before;
      },
      { what: 'a denial dropped for the audit backlog', intervalMs: 1 },
    );
    const unsent = (await pg.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit.outbox WHERE published_at IS NULL`)).rows[0].n;
    expect(unsent).toBeLessThan(base + 20);
    expect(await metrics.registry.getSingleMetricAsString('custodian_audit_denials_unrecorded_total')).toMatch(/reason="audit_backlog"/);

    // Business writes still commit until the real backlog reaches the limit, then 503 naming the backlog.
    const refused = await pollUntil(
      async () => {
        const res = await archive(auditorToken);
        if (res.status === 503) return res;
        expect(res.status).toBe(200);
        await countBacklog();
        return undefined;
      },
      { what: '503 for the audit backlog', intervalMs: 1 },
    );
    expect(refused.headers.get('retry-after')).toBe('1');
    const body = (await refused.json()) as { code: string; detail: string; details: { unsent: number; limit: number } };
    expect(body.code).toBe('audit_backlog');
    expect(body.detail).toMatch(/^audit backlog: \d+ unsent events/);
    expect(body.details).toEqual({ unsent: expect.any(Number), limit: base + 20 });
    expect(body.details.unsent).toBeGreaterThanOrEqual(base + 20);
  });

  it('on shutdown the repeats counted so far are written before the database closes', async () => {
    const member = { userId: randomUUID(), orgId, capabilities: [] };
    const token = await host().tokenFor(member);
    for (let i = 0; i < 5; i++) expect((await get('audit/events', token)).status).toBe(403);
    expect(await denialRows(member.userId)).toHaveLength(1);
    const stopping = host();
    a = undefined;
    await stopping.stop();
    const rows = await denialRows(member.userId);
    expect(rows.map((r) => r.details?.count)).toEqual([1, 4]);
  });
});
