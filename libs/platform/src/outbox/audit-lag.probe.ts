import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import type { NatsBus } from '../bus/nats.bus';

/**
 * The audit store's durable consumer. Declared here, not in apps/audit (which re-exports it), because
 * every producer's relay watches its lag (F5) and libraries may not import apps.
 */
export const AUDIT_STORE_CONSUMER = 'audit-store';

export interface AuditLagOptions {
  /** Durable name of the consumer to watch (AUDIT_STORE_CONSUMER). */
  consumer: string;
  /** Pause at or above this lag (config `audit.maxLag`, CUSTODIAN_AUDIT_MAX_LAG); 0 switches the check off. */
  maxLag: number;
  /** Ask NATS at most this often (default 250 ms); in between the last answer stands. */
  intervalMs?: number;
  /** Where `custodian_audit_consumer_lag` and `custodian_outbox_relay_paused` are exposed. */
  registry?: Registry;
  /** The `service` label of the paused gauge. */
  service?: string;
}

/**
 * Backpressure from a slow audit store over NATS (F5). JetStream would otherwise buffer without
 * limit, so producers would only feel a slow consumer once their own outbox filled. The relay asks
 * this probe before each pass; while the consumer is at or above `maxLag` the relay publishes
 * nothing, its outbox backlog grows, and the writer refuses changes with 503 + Retry-After once the
 * backlog passes its limit. A lag that cannot be read (no consumer yet, NATS away) never pauses:
 * publishing then fails or succeeds on its own terms.
 */
export class AuditLagProbe {
  private checkedAt = 0;
  private lag = 0;
  private inflight: Promise<void> | undefined;
  private readonly lagGauge: Gauge | undefined;
  private readonly pausedGauge: Gauge<'service'> | undefined;

  constructor(
    private readonly bus: Pick<NatsBus, 'consumerLag'>,
    private readonly opts: AuditLagOptions,
    private readonly logger: Logger,
  ) {
    // Several relays (all-in-one over NATS) share one registry and so one gauge.
    const registry = opts.registry;
    if (registry) {
      this.lagGauge =
        (registry.getSingleMetric('custodian_audit_consumer_lag') as Gauge | undefined) ??
        new Gauge({
          name: 'custodian_audit_consumer_lag',
          help: 'Audit events the audit store consumer has not yet acknowledged (pending + in flight), as last read by a relay',
          registers: [registry],
        });
      this.pausedGauge =
        (registry.getSingleMetric('custodian_outbox_relay_paused') as Gauge<'service'> | undefined) ??
        new Gauge({
          name: 'custodian_outbox_relay_paused',
          help: '1 while the outbox relay holds back publishing because the audit store consumer lags (F5)',
          labelNames: ['service'],
          registers: [registry],
        });
    }
  }

  get intervalMs(): number {
    return this.opts.intervalMs ?? 250;
  }

  /** The last lag read, refreshed if it is older than the interval. */
  async currentLag(): Promise<number> {
    if (Date.now() - this.checkedAt >= this.intervalMs) await (this.inflight ??= this.refresh().finally(() => (this.inflight = undefined)));
    return this.lag;
  }

  /** True while publishing should wait for the consumer. */
  async shouldPause(): Promise<boolean> {
    if (this.opts.maxLag <= 0) return false;
    const paused = (await this.currentLag()) >= this.opts.maxLag;
    this.pausedGauge?.set({ service: this.opts.service ?? 'unknown' }, paused ? 1 : 0);
    return paused;
  }

  private async refresh(): Promise<void> {
    try {
      this.lag = await this.bus.consumerLag(this.opts.consumer);
    } catch (error) {
      this.logger.debug({ err: error, consumer: this.opts.consumer }, 'audit consumer lag unknown; not pausing');
      this.lag = 0;
    }
    this.checkedAt = Date.now();
    this.lagGauge?.set(this.lag);
  }
}
