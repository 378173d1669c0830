import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { AuditEventRecorded, type AuditEvent } from '@custodian/contracts';
import {
  BUS,
  CONFIG,
  LOGGER,
  MetricsService,
  SERVICE_DATA_SOURCE,
  auditHashKey,
  type Bus,
  type CustodianConfig,
  type EventMeta,
} from '@custodian/platform';
import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import type { DataSource } from 'typeorm';
import { AuditChainWriter } from './audit-chain.writer';

export const AUDIT_STORE_DURABLE = 'audit-store';
/** After this many failed deliveries an event is dead-lettered instead of retried again (below the bus's MAX_DELIVER). */
export const DEAD_LETTER_AFTER = 5;
/** Deliveries handled at once; concurrent ones are written together (one transaction per batch, all orgs in it). */
export const STORE_CONCURRENCY = 1024;
const MAX_BATCH = STORE_CONCURRENCY;

interface Pending {
  event: AuditEvent;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Consumes every service's relayed audit events durably and appends each exactly once to its
 * org's hash chain. An event the store cannot write — the database refuses its data, or it
 * failed DEAD_LETTER_AFTER deliveries — goes to audit_dead_letter and counts on
 * `custodian_audit_dead_letters_total` (alert on any increase); reconciliation then lists it.
 */
@Injectable()
export class AuditStoreConsumer implements OnApplicationBootstrap {
  readonly writer: AuditChainWriter;
  private readonly deadLetters: Counter<'service'>;
  private readonly stored: Counter<'result'>;
  /** Events waiting for the next write, and whether a write is in flight. */
  private readonly pending: Pending[] = [];
  private flushing = false;

  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(MetricsService) metrics: MetricsService,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(CONFIG) config?: CustodianConfig,
  ) {
    this.writer = new AuditChainWriter(ds, auditHashKey(config?.secrets.masterKey));
    this.deadLetters = new Counter({
      name: 'custodian_audit_dead_letters_total',
      help: 'Audit events the store could not write and dead-lettered (alert on any increase)',
      labelNames: ['service'],
      registers: [metrics.registry],
    });
    this.stored = new Counter({
      name: 'custodian_audit_events_stored_total',
      help: 'Audit events received by the store, by result (inserted | duplicate)',
      labelNames: ['result'],
      registers: [metrics.registry],
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.bus.subscribe(AuditEventRecorded, AUDIT_STORE_DURABLE, (event, meta) => this.handle(event, meta), {
      concurrency: STORE_CONCURRENCY,
    });
  }

  async handle(event: AuditEvent, meta: EventMeta): Promise<void> {
    try {
      await this.store(event);
    } catch (error) {
      const poison = isDataError(error) || meta.deliveryCount >= DEAD_LETTER_AFTER;
      if (!poison) throw error; // redelivered with backoff by the bus
      await this.deadLetter(event, meta, error);
    }
  }

  /**
   * Resolves once the event is in its chain. Events arriving while a write is in flight go
   * together into the next one — one transaction for every org in it (AuditChainWriter). If a
   * batch fails, its events are retried one by one so a single bad event fails (and is
   * redelivered or dead-lettered) alone.
   */
  store(event: AuditEvent): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ event, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, MAX_BATCH);
        try {
          this.count(await this.writer.append(batch.map((p) => p.event)));
          for (const p of batch) p.resolve();
        } catch {
          for (const p of batch) {
            try {
              this.count(await this.writer.append([p.event]));
              p.resolve();
            } catch (error) {
              p.reject(error);
            }
          }
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private count(r: { inserted: number; duplicates: number }): void {
    if (r.inserted) this.stored.inc({ result: 'inserted' }, r.inserted);
    if (r.duplicates) this.stored.inc({ result: 'duplicate' }, r.duplicates);
  }

  private async deadLetter(event: AuditEvent, meta: EventMeta, error: unknown): Promise<void> {
    this.logger.error({ err: error, eventId: event.id, messageId: meta.messageId }, 'audit event dead-lettered');
    await this.ds.query(
      `INSERT INTO audit_dead_letter (message_id, payload, error, deliveries) VALUES ($1, $2, $3, $4)
       ON CONFLICT (message_id) DO UPDATE SET deliveries = EXCLUDED.deliveries, error = EXCLUDED.error`,
      [meta.messageId.slice(0, 128), JSON.stringify(event), String((error as Error)?.message ?? error).slice(0, 2000), meta.deliveryCount],
    );
    this.deadLetters.inc({ service: String(event.service).slice(0, 32) });
  }
}

/** PostgreSQL refused the data itself (class 22 data exception, 23 integrity): retrying cannot help. */
function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && /^2[23]/.test(code);
}
