import { AuditEventRecorded, ErrorCode, type AuditEvent } from '@custodian/contracts';
import type { Logger } from 'pino';
import type { DataSource, EntityManager } from 'typeorm';
import { backoffDelayMs } from '../backoff';
import type { Bus } from '../bus/bus';
import { InProcessBus } from '../bus/in-process.bus';
import { NatsBus } from '../bus/nats.bus';
import { pgUuidArray } from '../database/pg-binary-array';
import { CustodianException } from '../errors/custodian.exception';
import { AuditLagProbe, type AuditLagOptions } from './audit-lag.probe';
import type { OutboxWriter } from './outbox.writer';

export interface OutboxRelayOptions {
  pollMs?: number;
  batchSize?: number;
  /** In-process bus only: how long to wait for the consumers to acknowledge a batch before retrying it later. */
  ackTimeoutMs?: number;
  /** Backoff after a failed pass: full jitter up to base * 2^failures, capped. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /**
   * After a full pass (more rows may be waiting) the unsent rows are counted — a scan of up to
   * the writer's backlog limit — at most this often (default 1000 ms). A pass that found fewer
   * rows than its batch already knows the backlog: the rows it could not send.
   */
  backlogCountIntervalMs?: number;
  /**
   * NATS only: hold back publishing while the audit store's consumer lags this far behind (F5).
   * The in-process bus needs none: there a row is marked only once the store has it.
   */
  auditLag?: AuditLagOptions;
}

/**
 * Publishes committed outbox rows to the bus with the event id as message id; they count as sent
 * when the pass commits. A pass claims its rows and marks them in one statement (SKIP LOCKED, so
 * replicas share the work), publishes, unmarks what was not delivered, and commits. A crash
 * before the commit republishes; the message id (and the audit store's unique key, also after the
 * dedupe window) absorbs the duplicate. A failed publish or pass backs off exponentially; unsent rows
 * survive restarts because they are only ever marked, never removed, by the relay.
 *
 * NATS: a publish is acknowledged by JetStream (stored on disk) before its mark is committed. The
 * in-process bus keeps nothing across a restart, so there a row stays marked only once every
 * consumer of the event has handled it (InProcessBus.whenConsumed): all-in-one mode loses nothing
 * when the process dies between publish and store. Over NATS, a pass publishes nothing while the
 * audit store's consumer lags beyond `auditLag.maxLag` (AuditLagProbe), so a slow store backs up
 * the outbox and the writer pushes back (F5).
 */
export class OutboxRelay {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private wakeRequested = false;
  private failures = 0;
  private unsubscribe: (() => void) | undefined;
  private readonly lagProbe: AuditLagProbe | undefined;
  private pausedForLag = false;
  private lastBacklogCount = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly ds: DataSource,
    private readonly bus: Bus,
    private readonly writer: OutboxWriter,
    private readonly logger: Logger,
    private readonly opts: OutboxRelayOptions = {},
  ) {
    if (opts.auditLag && opts.auditLag.maxLag > 0 && bus instanceof NatsBus) this.lagProbe = new AuditLagProbe(bus, opts.auditLag, logger);
  }

  /** True while the last pass held back because the audit store's consumer lags (F5). */
  get paused(): boolean {
    return this.pausedForLag;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.unsubscribe = this.writer.onAppend(() => this.wake());
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** One pass: publish up to a batch; returns how many rows were marked sent. Throws if a publish failed. */
  async relayOnce(): Promise<number> {
    if (await this.holdBack()) {
      await this.ds.transaction((manager) => this.reportBacklog(manager));
      return 0;
    }
    const batch = this.opts.batchSize ?? 200;
    let failure: unknown;
    const marked = await this.ds.transaction(async (manager) => {
      // Claimed and marked sent in one statement (each row is written once, not locked and then
      // updated); whatever is not delivered below is unmarked again before this transaction
      // commits, so no other transaction ever sees a row marked that was not sent. RETURNING keeps
      // no order: sorted by id (the text of a uuid sorts as the uuid does), as the claim took them.
      const [claimed]: [Array<{ id: string; payload: AuditEvent }>, number] = await manager.query(
        `UPDATE outbox o SET published_at = now()
           FROM (SELECT id FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) c
          WHERE o.id = c.id
          RETURNING o.id, o.payload`,
        [batch],
      );
      const rows = claimed.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      // Published as one pipelined batch (JetStream acknowledges each message; the acks are awaited
      // together); the store orders events by arrival, so a failed row is simply retried in a later pass.
      const settled = await this.bus.publishMany(
        AuditEventRecorded,
        rows.map((row) => ({ payload: row.payload, messageId: row.id })),
      );
      const published: string[] = [];
      const failed: string[] = [];
      settled.forEach((result, i) => {
        const id = rows[i].id;
        if (result.status === 'fulfilled') return void published.push(id);
        failed.push(id);
        const error = result.reason as unknown;
        if (error instanceof CustodianException && error.code === ErrorCode.InvalidMessage) {
          // A row no version of the contract accepts must not block the outbox: it stays unsent and
          // reconciliation reports it as stuck.
          this.logger.error({ err: error, eventId: id }, 'outbox row does not match its contract; skipped');
          return;
        }
        failure ??= error;
        this.logger.warn({ err: error, eventId: id }, 'outbox publish failed; will retry');
      });
      let sent = published;
      if (this.bus instanceof InProcessBus && published.length > 0) {
        const bus = this.bus;
        const timeout = this.opts.ackTimeoutMs ?? 5000;
        const acked = await Promise.all(published.map((id) => bus.whenConsumed(id, timeout)));
        sent = published.filter((_, i) => acked[i]);
        if (sent.length < published.length) {
          failure ??= new Error(`${published.length - sent.length} events not yet acknowledged by their consumers`);
          failed.push(...published.filter((_, i) => !acked[i]));
        }
      }
      if (failed.length > 0) {
        await manager.query(`UPDATE outbox SET published_at = NULL, attempts = attempts + 1 WHERE id = ANY($1::uuid[])`, [
          pgUuidArray(failed),
        ]);
      }
      if (rows.length < batch) {
        // Every unsent row this relay can see was in this pass: the backlog is what it could not send.
        this.writer.reportBacklog(rows.length - sent.length);
      } else if (Date.now() - this.lastBacklogCount >= (this.opts.backlogCountIntervalMs ?? 1000)) {
        await this.reportBacklog(manager); // this transaction already sees its own marks
      }
      return sent.length;
    });
    if (failure !== undefined && marked === 0) throw failure;
    return marked;
  }

  /** Bounded count (partial index): enough to tell the writer whether to push back (F5). */
  private async reportBacklog(manager: EntityManager): Promise<void> {
    this.lastBacklogCount = Date.now();
    const [{ n }] = (await manager.query(`SELECT count(*)::int AS n FROM (SELECT 1 FROM outbox WHERE published_at IS NULL LIMIT $1) x`, [
      this.writer.maxBacklogSize + 1,
    ])) as Array<{ n: number }>;
    this.writer.reportBacklog(n);
  }

  private async holdBack(): Promise<boolean> {
    if (!this.lagProbe) return false;
    const paused = await this.lagProbe.shouldPause();
    if (paused !== this.pausedForLag) {
      const lag = await this.lagProbe.currentLag();
      if (paused) this.logger.warn({ lag }, 'audit store consumer lags: outbox relay paused');
      else this.logger.info({ lag }, 'audit store consumer caught up: outbox relay resumed');
    }
    this.pausedForLag = paused;
    return paused;
  }

  private wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.wakeRequested = true;
      return;
    }
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => {
        this.running = undefined;
      });
    }, delayMs);
  }

  private async tick(): Promise<void> {
    let next = this.opts.pollMs ?? 500;
    try {
      this.wakeRequested = false;
      const sent = await this.relayOnce();
      this.failures = 0;
      if (this.pausedForLag) next = this.lagProbe!.intervalMs;
      else if (sent > 0 || this.wakeRequested) next = 0;
    } catch (error) {
      this.failures++;
      next = backoffDelayMs(
        { baseMs: this.opts.backoffBaseMs ?? 200, capMs: this.opts.backoffMaxMs ?? 10_000, maxExponent: 10 },
        this.failures,
      );
      this.logger.warn({ err: error, retryInMs: next }, 'outbox relay pass failed');
    }
    this.schedule(next);
  }
}
