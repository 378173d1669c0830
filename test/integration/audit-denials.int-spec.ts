import { randomUUID } from 'node:crypto';
import { Controller, Get, Module } from '@nestjs/common';
import type { AuditEvent, EventContract, PayloadOf } from '@custodian/contracts';
import { API_PREFIX, InProcessBus, MetricsService, RequirePolicy, ServiceDatabaseModule } from '@custodian/platform';
import { Client } from 'pg';
import pino from 'pino';
import { SERVICE_ENTITIES as APPROVALS_ENTITIES } from '../../apps/approvals/src/entities';
import { SERVICE_MIGRATIONS as APPROVALS_MIGRATIONS } from '../../apps/approvals/src/migrations';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { pollUntil } from '../support/poll';
import { startAuditHost, type AuditHost } from './audit-harness';

/** An in-process bus whose publishes fail while `down` (the event stream is unavailable). */
class FlakyBus extends InProcessBus {
  down = false;
  publishAttempts = 0;

  override publishMany<E extends EventContract>(
    contract: E,
    events: ReadonlyArray<{ payload: PayloadOf<E>; messageId: string }>,
  ): Promise<Array<PromiseSettledResult<void>>> {
    this.publishAttempts++;
    if (this.down) return Promise.resolve(events.map(() => ({ status: 'rejected', reason: new Error('stream unavailable') })));
    return super.publishMany(contract, events);
  }
}

/** A route of a second service hosted in the same process (all-in-one shape). */
@Controller(`${API_PREFIX}/denial-demo`)
class DemoController {
  @Get()
  @RequirePolicy({ capabilities: ['approve_actions'] })
  demo(): { ok: true } {
    return { ok: true };
  }
}

@Module({
  imports: [ServiceDatabaseModule.forService({ service: 'approvals', entities: APPROVALS_ENTITIES, migrations: APPROVALS_MIGRATIONS })],
  controllers: [DemoController],
})
class DemoModule {}

/** A6: the guard's refusals go through the refused service's outbox, so a bus outage loses none. */
describe('guard denials are audited through the outbox', () => {
  let db: TestDatabase;
  let a: AuditHost;
  let pg: Client;
  const bus = new FlakyBus(pino({ level: 'silent' }), { retryBaseMs: 5 });
  const orgId = randomUUID();

  const get = (path: string, token: string): Promise<Response> =>
    fetch(`${a.host.url}/api/v1/${path}`, { headers: { authorization: `Bearer ${token}` } });
  const denials = async (
    userId: string,
    schema = 'audit',
  ): Promise<Array<{ id: string; payload: AuditEvent; sent: boolean; attempts: number }>> =>
    (
      await pg.query(
        `SELECT id, payload, published_at IS NOT NULL AS sent, attempts FROM ${schema}.outbox
          WHERE payload->>'action' = 'authz.denied' AND payload->'actor'->>'userId' = $1`,
        [userId],
      )
    ).rows;
  const stored = async (userId: string): Promise<Array<{ id: string; service: string; event: AuditEvent }>> =>
    (await pg.query(`SELECT id, service, event FROM audit.audit_event WHERE action = 'authz.denied' AND actor_user_id = $1`, [userId]))
      .rows;

  beforeAll(async () => {
    db = await createTestDatabase('audit_denials', { migrated: true });
    a = await startAuditHost(db.url, { bus, modules: [DemoModule], services: ['audit', 'approvals'] });
    pg = new Client({ connectionString: db.url });
    await pg.connect();
  });

  afterAll(async () => {
    await pg?.end();
    await a?.stop();
    await db?.drop();
  });

  it('a refusal while the bus is down is answered 403, kept in the outbox, and stored exactly once when the bus is back', async () => {
    const user = { userId: randomUUID(), orgId, capabilities: ['manage_users'] };
    const token = await a.tokenFor(user);
    bus.down = true;
    try {
      const res = await get('audit/events', token);
      expect(res.status).toBe(403);
      const { requestId } = (await res.json()) as { requestId: string };
      // The outbox row is in the refused service's own schema; the relay tried and failed.
      const [row] = await pollUntil(
        async () => ((await denials(user.userId)).find((r) => r.attempts > 0) ? denials(user.userId) : undefined),
        {
          what: 'a failed relay attempt',
        },
      );
      expect(row).toMatchObject({ sent: false });
      expect(row.payload).toMatchObject({
        service: 'audit',
        orgId,
        outcome: 'denied',
        requestId,
        target: { type: 'route', id: 'GET /api/v1/audit/events' },
        details: { missingCapabilities: ['view_audit'], layer: 'capability' },
      });
      expect(await stored(user.userId)).toEqual([]);
    } finally {
      bus.down = false;
    }
    const rows = await pollUntil(async () => ((await stored(user.userId)).length > 0 ? stored(user.userId) : undefined), {
      timeoutMs: 20_000,
      what: 'denial stored after the bus recovered',
    });
    await pollUntil(async () => (await denials(user.userId)).every((r) => r.sent), { what: 'outbox row marked sent' });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ service: 'audit', event: { details: { missingCapabilities: ['view_audit'] } } });
    expect(await stored(user.userId)).toHaveLength(1);
  });

  it("names the refused route's service and uses that service's outbox when a process hosts several", async () => {
    const user = { userId: randomUUID(), orgId, capabilities: ['view_audit'] };
    const token = await a.tokenFor(user);
    expect((await get('denial-demo', token)).status).toBe(403);
    const [row] = await pollUntil(() => denials(user.userId, 'approvals').then((r) => (r.length ? r : undefined)), {
      what: 'denial in the approvals outbox',
    });
    expect(row.payload).toMatchObject({ service: 'approvals', details: { missingCapabilities: ['approve_actions'] } });
    expect(await denials(user.userId, 'audit')).toEqual([]);
    const [event] = await pollUntil(() => stored(user.userId).then((r) => (r.length ? r : undefined)), { what: 'denial stored' });
    expect(event.service).toBe('approvals');
  });

  it('when the outbox cannot be written the refusal still answers 403 (never 500), logged and counted', async () => {
    const user = { userId: randomUUID(), orgId, capabilities: ['manage_users'] };
    const token = await a.tokenFor(user);
    const metrics = a.host.app.get(MetricsService);
    await pg.query(`REVOKE INSERT ON audit.outbox FROM custodian_audit`);
    try {
      const res = await get('audit/events', token);
      expect(res.status).toBe(403);
      expect(((await res.json()) as { code: string }).code).toBe('forbidden');
    } finally {
      await pg.query(`GRANT INSERT ON audit.outbox TO custodian_audit`);
    }
    expect(await metrics.registry.getSingleMetricAsString('custodian_audit_denials_unrecorded_total')).toMatch(/service="audit"[^}]*} 1/);
    expect(await denials(user.userId)).toEqual([]);
  });
});
