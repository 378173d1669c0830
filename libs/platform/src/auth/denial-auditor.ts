import { AsyncResource } from 'node:async_hooks';
import { AuditEventRecorded, ErrorCode, type AuditEvent, type PrincipalSnapshot, type ServiceName } from '@custodian/contracts';
import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import type { Bus } from '../bus/bus';
import { requestContext } from '../context/request-context';
import { CustodianException } from '../errors/custodian.exception';
import type { MetricsService } from '../metrics/metrics.service';
import { OutboxBackpressureError, agentOf, type AuditEventInput } from '../outbox/outbox.writer';
import { uuidv7 } from '../outbox/uuidv7';
import { canonicalJson } from '../validation/canonical-json';

const audited = new WeakSet<object>();

/** Marks a refusal the guard has written to the audit trail already, so no later layer records it twice. */
export function markDenialAudited<T extends object>(error: T): T {
  audited.add(error);
  return error;
}

/** Whether the guard has recorded this refusal already (markDenialAudited). */
export function isDenialAudited(error: unknown): boolean {
  return typeof error === 'object' && error !== null && audited.has(error);
}

/** Where a service keeps the refusals on its routes: its own outbox, in a transaction of its own. */
export type DenialSink = (event: AuditEventInput) => Promise<void>;

export interface DenialRecord {
  principal: PrincipalSnapshot;
  route: string;
  missing: readonly string[];
  /** The deciding layer (default `capability`). */
  layer?: string;
  /** The refused route's controller class: it names the service whose route it is. */
  controller?: unknown;
}

/** What the caller answers: the refusal as decided, or 429 because the credential is over its refusal budget. */
export type DenialVerdict = { limited: false } | { limited: true; retryAfterSeconds: number };

export interface DenialAuditorOptions {
  /** Hosted services in configuration order: a refusal no service owns goes to the first that registered. */
  services?: readonly ServiceName[];
  metrics?: MetricsService;
  /** Aggregation and budget window (default 10 s). */
  windowMs?: number;
  /** Refusals per credential per window answered as decided; beyond it 429 (default 100; 0 = no limit). */
  budget?: number;
  /** Most distinct refusals held in memory; beyond it the oldest is written out early (default 10,000). */
  maxEntries?: number;
  /** The clock (tests). */
  now?: () => number;
}

/** One kind of refusal of one credential in the current window. */
interface Entry {
  service: string;
  sink: DenialSink | undefined;
  /** The event of the window's first refusal (explicit actor, no request id): the template of the summary. */
  event: AuditEventInput;
  windowEndsAt: number;
  /** Refusals since the last event written for this entry, and when the first and last of them happened. */
  count: number;
  firstAt: number;
  lastAt: number;
}

const NOT_LIMITED: DenialVerdict = { limited: false };

/** The answer to a refusal beyond the credential's budget: 429 with the seconds until its window ends. */
export function rateLimited(retryAfterSeconds: number): CustodianException {
  return new CustodianException(ErrorCode.RateLimited, 'Too many refused requests from this credential; retry later', {
    retryAfterSeconds,
  });
}

/**
 * Records refusals in the audit trail (A6), at a cost a flood of refusals cannot turn into an
 * outage. The guard is global, so it has no database of its own: each hosted service registers its
 * outbox as a sink (DenialOutboxRegistrar) together with its controllers, and a refusal is written
 * to the outbox of the service whose route was refused — or, for a route no service owns, of the
 * first hosted service in configuration order. Handlers that refuse (objects) pass their own sink.
 *
 * Aggregation (docs/adr/0014-denial-aggregation.md): refusals are keyed by service, credential
 * (org, user, session or API key, agent) and what the event says (target and details). The first
 * refusal of a key is written at once — a single refusal is audited as before — and starts a
 * window; repeats within it are only counted, and at the window's end one summarizing event with
 * `count`, `firstAt` and `lastAt` is written. Summing `details.count` over a credential's
 * `authz.denied` events gives its refusals. If the process dies, the repeats of the open windows
 * are lost (never a first occurrence); on shutdown they are written.
 *
 * Budget: each credential may be refused `budget` times per window; further refusals are answered
 * 429 (code `rate_limited`, Retry-After until the window ends) and counted under their own key
 * when it exists, else under one per-credential `rate_limited` key. So a credential adds at most
 * `budget` + 1 keys per window, whatever it sends.
 *
 * If an event cannot be written (database down, audit backlog) the refusal still stands: every
 * refusal it stood for is counted in custodian_audit_denials_unrecorded_total and the failure is
 * logged once per service and reason per window.
 */
export class DenialAuditor {
  private readonly sinks = new Map<ServiceName, DenialSink>();
  private readonly owners = new Map<unknown, ServiceName>();
  private readonly unrecorded: Counter<'service' | 'reason'> | undefined;
  private readonly handled: Counter<'service' | 'handling'> | undefined;
  private readonly entries = new Map<string, Entry>();
  private readonly budgets = new Map<string, { windowEndsAt: number; refusals: number }>();
  private readonly writes = new Set<Promise<void>>();
  private readonly warned = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private readonly windowMs: number;
  private readonly budget: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  /** Runs the window sweep outside any request's context, so summaries carry no request id of a bystander. */
  private readonly detached: (fn: () => void) => void;

  constructor(
    private readonly bus: Bus,
    private readonly logger: Logger,
    private readonly opts: DenialAuditorOptions = {},
  ) {
    this.windowMs = Math.max(1, opts.windowMs ?? 10_000);
    this.budget = Math.max(0, opts.budget ?? 100);
    this.maxEntries = Math.max(1, opts.maxEntries ?? 10_000);
    this.now = opts.now ?? Date.now;
    this.detached = AsyncResource.bind((fn: () => void) => fn());
    if (opts.metrics) {
      this.unrecorded = new Counter({
        name: 'custodian_audit_denials_unrecorded_total',
        help: 'Refusals whose authz.denied audit event could not be written (the refusal stood), by reason; alert on any increase',
        labelNames: ['service', 'reason'],
        registers: [opts.metrics.registry],
      });
      this.handled = new Counter({
        name: 'custodian_audit_denials_total',
        help: 'Refusals seen by the denial auditor, by handling: written (own event), aggregated (counted into a summary), rate_limited (answered 429)',
        labelNames: ['service', 'handling'],
        registers: [opts.metrics.registry],
      });
    }
  }

  /** A hosted service's outbox, and the controllers whose refusals belong to it. */
  register(service: ServiceName, sink: DenialSink, controllers: Iterable<unknown>): void {
    this.sinks.set(service, sink);
    for (const controller of controllers) this.owners.set(controller, service);
  }

  /** The service a refusal on this controller is recorded under; undefined when no service registered. */
  serviceFor(controller?: unknown): ServiceName | undefined {
    const owner = controller === undefined ? undefined : this.owners.get(controller);
    if (owner) return owner;
    return (this.opts.services ?? []).find((s) => this.sinks.has(s)) ?? this.sinks.keys().next().value;
  }

  /** A refusal by the guard (missing capability). */
  record(input: DenialRecord): Promise<DenialVerdict> {
    const service = this.serviceFor(input.controller);
    return this.submit(
      input.principal,
      {
        orgId: input.principal.orgId,
        action: 'authz.denied',
        outcome: 'denied',
        target: { type: 'route', id: input.route.slice(0, 128) },
        details: { missingCapabilities: [...input.missing], layer: input.layer ?? 'capability' },
      },
      service ?? 'none',
      service ? this.sinks.get(service) : undefined,
    );
  }

  /**
   * A refusal decided elsewhere (a handler), written to `sink` (that service's outbox). The event's
   * actor is filled from the principal and the request, so a later summary names the same actor.
   */
  recordRefusal(principal: PrincipalSnapshot, event: AuditEventInput, service: string, sink: DenialSink): Promise<DenialVerdict> {
    return this.submit(principal, event, service, sink);
  }

  /** Writes every open window's repeats now (tests, shutdown); windows start afresh. */
  async flush(): Promise<void> {
    for (const [key, entry] of this.entries) {
      this.entries.delete(key);
      if (entry.count > 0) this.writeSummary(entry);
    }
    await this.settled();
  }

  /** Shutdown: the repeats counted so far are written before the databases close. */
  async onModuleDestroy(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  private async submit(
    principal: PrincipalSnapshot,
    input: AuditEventInput,
    service: string,
    sink: DenialSink | undefined,
  ): Promise<DenialVerdict> {
    const now = this.now();
    const credential = credentialOf(principal);
    const verdict = this.spend(credential, now);
    // The grouping key is the canonical form of what the event will carry as JSON (details are built by
    // code: a Date or a non-finite number becomes what JSON makes of it, never an exception here).
    const own = canonicalJson(JSON.parse(JSON.stringify([service, credential, input.target ?? null, input.details ?? null])));
    const limited = verdict.limited && !this.entries.has(own);
    const key = limited ? canonicalJson([service, credential, 'rate_limited']) : own;
    let entry = this.entries.get(key);
    if (entry && entry.windowEndsAt <= now) {
      // The sweep has not run yet (timers lag): close the old window first.
      this.entries.delete(key);
      if (entry.count > 0) this.writeSummary(entry);
      entry = undefined;
    }
    if (entry) {
      if (entry.count === 0) entry.firstAt = now;
      entry.count++;
      entry.lastAt = now;
      this.handled?.inc({ service, handling: verdict.limited ? 'rate_limited' : 'aggregated' });
      return verdict;
    }
    const event = limited ? rateLimitedEvent(input) : input;
    const fresh: Entry = {
      service,
      sink,
      event: { ...event, actor: actorOf(principal, input.actor) },
      windowEndsAt: now + this.windowMs,
      count: 0,
      firstAt: now,
      lastAt: now,
    };
    this.makeRoom();
    this.entries.set(key, fresh);
    this.schedule();
    this.handled?.inc({ service, handling: verdict.limited ? 'rate_limited' : 'written' });
    // The first refusal of a kind is written now, inside the request (its request id and user agent included).
    await this.write(fresh, { ...fresh.event, details: { ...fresh.event.details, count: 1, firstAt: iso(now), lastAt: iso(now) } }, 1);
    return verdict;
  }

  /** Counts a refusal against the credential's budget for the current window. */
  private spend(credential: string, now: number): DenialVerdict {
    if (this.budget === 0) return NOT_LIMITED;
    let b = this.budgets.get(credential);
    if (!b || b.windowEndsAt <= now) {
      if (!b && this.budgets.size >= this.maxEntries) this.pruneBudgets(now);
      b = { windowEndsAt: now + this.windowMs, refusals: 0 };
      this.budgets.set(credential, b);
      this.schedule();
    }
    b.refusals++;
    return b.refusals > this.budget
      ? { limited: true, retryAfterSeconds: Math.max(1, Math.ceil((b.windowEndsAt - now) / 1000)) }
      : NOT_LIMITED;
  }

  /** Keeps the map bounded: the oldest entry is closed (its repeats written) to make room. */
  private makeRoom(): void {
    while (this.entries.size >= this.maxEntries) {
      const [key, oldest] = this.entries.entries().next().value as [string, Entry];
      this.entries.delete(key);
      if (oldest.count > 0) this.writeSummary(oldest);
    }
  }

  private pruneBudgets(now: number): void {
    for (const [credential, b] of this.budgets) if (b.windowEndsAt <= now) this.budgets.delete(credential);
    // Still full: the oldest budgets go (their credentials start a fresh window, never a longer one).
    for (const credential of this.budgets.keys()) {
      if (this.budgets.size < this.maxEntries) break;
      this.budgets.delete(credential);
    }
  }

  /** One timer at a time, for the earliest window end; it never keeps the process alive. */
  private schedule(delayMs = this.windowMs): void {
    if (this.timer) return;
    this.detached(() => {
      this.timer = setTimeout(() => this.sweep(), Math.max(1, delayMs));
      this.timer.unref();
    });
  }

  /** Closes the windows that ended: an entry with repeats writes its summary and opens a new window; a quiet one goes. */
  private sweep(): void {
    this.timer = undefined;
    const now = this.now();
    for (const [key, entry] of this.entries) {
      if (entry.windowEndsAt > now) continue;
      if (entry.count === 0) {
        this.entries.delete(key);
        continue;
      }
      this.writeSummary(entry);
      entry.windowEndsAt = now + this.windowMs;
    }
    let next = Number.POSITIVE_INFINITY;
    for (const entry of this.entries.values()) next = Math.min(next, entry.windowEndsAt);
    for (const [credential, b] of this.budgets) {
      if (b.windowEndsAt <= now) this.budgets.delete(credential);
      else next = Math.min(next, b.windowEndsAt);
    }
    if (next !== Number.POSITIVE_INFINITY) this.schedule(next - now);
  }

  /** Writes the entry's counted repeats as one event and resets its count. */
  private writeSummary(entry: Entry): void {
    const n = entry.count;
    const event: AuditEventInput = {
      ...entry.event,
      details: { ...entry.event.details, count: n, firstAt: iso(entry.firstAt), lastAt: iso(entry.lastAt) },
    };
    entry.count = 0;
    // Outside the current request (an eviction or a late window close can happen inside one), so the
    // writer does not stamp the summary with that bystander's request id.
    let write: Promise<void> = Promise.resolve();
    this.detached(() => (write = this.write(entry, event, n)));
    const tracked = write.finally(() => this.writes.delete(tracked));
    this.writes.add(tracked);
  }

  private async settled(): Promise<void> {
    while (this.writes.size > 0) await Promise.all([...this.writes]);
  }

  /** Never throws: a refusal stands whether or not its event could be written. */
  private async write(entry: Entry, event: AuditEventInput, refusals: number): Promise<void> {
    try {
      if (entry.sink) await entry.sink(event);
      else await this.publish(event);
    } catch (error) {
      const reason = error instanceof OutboxBackpressureError ? 'audit_backlog' : 'write_failed';
      this.unrecorded?.inc({ service: entry.service, reason }, refusals);
      this.warnOnce(entry.service, reason, error, refusals);
    }
  }

  /** One log line per service and reason per window, so a flood of failures does not flood the log. */
  private warnOnce(service: string, reason: string, error: unknown, refusals: number): void {
    const key = `${service}:${reason}`;
    const now = this.now();
    if ((this.warned.get(key) ?? Number.NEGATIVE_INFINITY) > now) return;
    this.warned.set(key, now + this.windowMs);
    this.logger.error(
      { err: error, service, reason, refusals },
      reason === 'audit_backlog'
        ? 'denial audit events dropped: the audit backlog is at the denial limit; the refusals stand (custodian_audit_denials_unrecorded_total)'
        : 'denial audit event could not be written; the refusal stands (custodian_audit_denials_unrecorded_total)',
    );
  }

  /** Only a process that hosts no service (no outbox anywhere) publishes directly, best effort. */
  private async publish(input: AuditEventInput): Promise<void> {
    const ctx = requestContext.current();
    const event: AuditEvent = {
      ...input,
      id: uuidv7(),
      occurredAt: new Date().toISOString(),
      service: 'auth-guard',
      actor: input.actor ?? {},
      ...(ctx?.requestId ? { requestId: ctx.requestId } : {}),
    };
    await this.bus.publish(AuditEventRecorded, event, { messageId: event.id });
  }
}

/** The credential a refusal is charged to: the API key or session, with its user, org and agent. */
function credentialOf(p: PrincipalSnapshot): string {
  return JSON.stringify([p.orgId, p.userId, p.apiKeyId ?? p.sessionId ?? null, p.agent?.clientId ?? null]);
}

/** The actor as the request states it; written explicitly so a summary written later names the same one. */
function actorOf(principal: PrincipalSnapshot, given: AuditEventInput['actor']): NonNullable<AuditEventInput['actor']> {
  const ip = requestContext.current()?.ip;
  return {
    userId: principal.userId,
    ...(principal.sessionId ? { sessionId: principal.sessionId } : {}),
    ...(principal.apiKeyId ? { apiKeyId: principal.apiKeyId } : {}),
    ...(agentOf(principal) ? { agent: agentOf(principal) } : {}),
    ...(ip ? { ip: ip.slice(0, 64) } : {}),
    ...given,
  };
}

/** The per-credential event of the refusals answered 429 that were not of a kind already counted. */
function rateLimitedEvent(input: AuditEventInput): AuditEventInput {
  return {
    orgId: input.orgId,
    action: 'authz.denied',
    outcome: 'denied',
    target: { type: 'route', id: '*' },
    details: { reason: 'rate_limited' },
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
