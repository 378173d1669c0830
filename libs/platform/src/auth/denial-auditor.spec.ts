import type { PrincipalSnapshot } from '@custodian/contracts';
import pino from 'pino';
import type { Bus } from '../bus/bus';
import { requestContext } from '../context/request-context';
import { MetricsService } from '../metrics/metrics.service';
import { OutboxBackpressureError, type AuditEventInput } from '../outbox/outbox.writer';
import { DenialAuditor, type DenialAuditorOptions } from './denial-auditor';

const ORG = '0190a5a8-0000-7000-8000-000000000001';
const principal = (n = 2, sessionId = `0190a5a8-0000-7000-8000-00000000010${n}`): PrincipalSnapshot =>
  ({ orgId: ORG, userId: `0190a5a8-0000-7000-8000-00000000000${n}`, sessionId }) as PrincipalSnapshot;

function harness(opts: DenialAuditorOptions & { fails?: () => unknown } = {}) {
  let clock = 1_000_000;
  const written: AuditEventInput[] = [];
  const requestIds: Array<string | undefined> = [];
  const metrics = new MetricsService({ mode: 'test' });
  const auditor = new DenialAuditor({} as Bus, pino({ level: 'silent' }), { windowMs: 10_000, metrics, now: () => clock, ...opts });
  const sink = async (event: AuditEventInput): Promise<void> => {
    const failure = opts.fails?.();
    if (failure) throw failure;
    written.push(event);
    requestIds.push(requestContext.requestId());
  };
  auditor.register('objects', sink, []);
  const refuse = (p = principal(), route = 'GET /api/v1/things') => auditor.record({ principal: p, route, missing: ['view_things'] });
  const metric = async (name: string): Promise<string> => metrics.registry.getSingleMetricAsString(name);
  return { auditor, written, requestIds, refuse, metric, tick: (ms: number) => (clock += ms), sink };
}

const counts = (events: AuditEventInput[]): number => events.reduce((n, e) => n + Number(e.details?.count), 0);

describe('DenialAuditor: aggregation and budget', () => {
  it('writes the first refusal at once, counts repeats, and writes them as one summary when the window is flushed', async () => {
    const h = harness({ budget: 0 });
    await h.refuse();
    expect(h.written).toEqual([
      expect.objectContaining({
        action: 'authz.denied',
        target: { type: 'route', id: 'GET /api/v1/things' },
        details: expect.objectContaining({ missingCapabilities: ['view_things'], layer: 'capability', count: 1 }),
      }),
    ]);
    for (let i = 0; i < 99; i++) {
      h.tick(10);
      await h.refuse();
    }
    expect(h.written).toHaveLength(1);
    await h.auditor.flush();
    expect(h.written).toHaveLength(2);
    expect(h.written[1].details).toMatchObject({
      count: 99,
      firstAt: new Date(1_000_010).toISOString(),
      lastAt: new Date(1_000_990).toISOString(),
    });
    expect(counts(h.written)).toBe(100);
    expect(await h.metric('custodian_audit_denials_total')).toMatch(/handling="aggregated"[^}]*} 99/);
  });

  it('keys by credential and by what was refused: another session, route or layer is written at once', async () => {
    const h = harness({ budget: 0 });
    await h.refuse();
    await h.refuse(principal(2, '0190a5a8-0000-7000-8000-000000000199'));
    await h.refuse(principal(), 'GET /api/v1/other');
    await h.auditor.record({ principal: principal(), route: 'GET /api/v1/things', missing: [], layer: 'agent_scope' });
    expect(h.written).toHaveLength(4);
    await h.refuse();
    expect(h.written).toHaveLength(4);
  });

  it('a window that ends is closed by the next refusal even before the timer runs, and a quiet key starts afresh', async () => {
    const h = harness({ budget: 0 });
    await h.refuse();
    h.tick(1);
    await h.refuse();
    h.tick(10_000);
    await h.refuse(); // the old window's repeat is summarized, this one written at once as the first of a new burst
    await Promise.resolve();
    await h.auditor.flush();
    expect(h.written.map((e) => e.details?.count)).toEqual([1, 1, 1]);
  });

  it('summaries written later carry the actor but not the request id of whichever request was running', async () => {
    const h = harness({ budget: 0 });
    await requestContext.run({ requestId: 'first', ip: '10.0.0.1' }, () => h.refuse());
    await requestContext.run({ requestId: 'second' }, () => h.refuse());
    await requestContext.run({ requestId: 'third' }, () => h.auditor.flush());
    expect(h.written[1].actor).toEqual({ userId: principal().userId, sessionId: principal().sessionId, ip: '10.0.0.1' });
    expect(h.written[1]).not.toHaveProperty('requestId');
    // The sink (the outbox writer) runs outside the request that happened to close the window.
    expect(h.requestIds).toEqual(['first', undefined]);
  });

  it('over the budget: 429 with the seconds left in the window, counted under the same key or one per-credential key', async () => {
    const h = harness({ budget: 3 });
    for (let i = 0; i < 3; i++) expect(await h.refuse()).toEqual({ limited: false });
    h.tick(2_500);
    expect(await h.refuse()).toEqual({ limited: true, retryAfterSeconds: 8 });
    // New kinds of refusal past the budget do not each get an event: one per-credential event, then counted.
    for (let i = 0; i < 50; i++) expect((await h.refuse(principal(), `GET /api/v1/r${i}`)).limited).toBe(true);
    expect(h.written).toHaveLength(2);
    expect(h.written[1]).toMatchObject({ target: { type: 'route', id: '*' }, details: { reason: 'rate_limited', count: 1 } });
    // Another credential has its own budget.
    expect(await h.refuse(principal(3))).toEqual({ limited: false });
    await h.auditor.flush();
    expect(counts(h.written)).toBe(3 + 1 + 50 + 1);
    // A new window restores the budget.
    h.tick(10_000);
    expect(await h.refuse()).toEqual({ limited: false });
  });

  it('holds at most maxEntries kinds: the oldest is written out early to make room', async () => {
    const h = harness({ budget: 0, maxEntries: 2 });
    await h.refuse(principal(), 'GET /a');
    await h.refuse(principal(), 'GET /a');
    await h.refuse(principal(), 'GET /b');
    await h.refuse(principal(), 'GET /c'); // evicts /a with its one repeat
    await h.auditor.flush();
    expect(h.written.map((e) => [e.target?.id, e.details?.count])).toEqual([
      ['GET /a', 1],
      ['GET /b', 1],
      ['GET /a', 1],
      ['GET /c', 1],
    ]);
  });

  it('counts every refusal an unwritten event stood for, by reason, and never throws', async () => {
    let failure: unknown;
    const h = harness({ budget: 0, fails: () => failure });
    failure = new OutboxBackpressureError(5000, 5000);
    await expect(h.refuse()).resolves.toEqual({ limited: false });
    failure = undefined;
    await h.refuse(principal(3));
    for (let i = 0; i < 4; i++) await h.refuse(principal(3));
    failure = new Error('database down');
    await h.auditor.flush();
    const text = await h.metric('custodian_audit_denials_unrecorded_total');
    expect(text).toMatch(/reason="audit_backlog"[^}]*} 1$/m);
    expect(text).toMatch(/reason="write_failed"[^}]*} 4$/m);
  });

  it('the window timer writes summaries by itself and flushes on shutdown', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'queueMicrotask', 'nextTick'] });
    try {
      const h = harness({ budget: 0, now: () => Date.now() });
      await h.refuse();
      await h.refuse();
      await h.refuse();
      await jest.advanceTimersByTimeAsync(10_000);
      expect(h.written.map((e) => e.details?.count)).toEqual([1, 2]);
      await h.refuse();
      await h.auditor.onModuleDestroy();
      expect(h.written.map((e) => e.details?.count)).toEqual([1, 2, 1]);
    } finally {
      jest.useRealTimers();
    }
  });
});
