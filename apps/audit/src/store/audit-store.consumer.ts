import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { AuditEventRecorded, type AuditEvent } from '@custodian/contracts';
import {
  AUDIT_STORE_CONSUMER,
  BUS,
  CONFIG,
  LOGGER,
  MetricsService,
  SERVICE_DATA_SOURCE,
  auditHashKey,
  isDataOrIntegrityError,
  type Bus,
  type CustodianConfig,
  type DeadLetterInfo,
  type EventMeta,
} from '@custodian/platform';
import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import type { DataSource } from 'typeorm';
import { AuditChainWriter } from './audit-chain.writer';

/** The store's durable consumer; producers' relays watch its lag (F5), so the name lives in the platform. */
export const AUDIT_STORE_DURABLE = AUDIT_STORE_CONSUMER;
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
 * org's hash chain. An event the store cannot take — the database refuses its data, it failed
 * DEAD_LETTER_AFTER deliveries, it breaks its contract, or the bus gave up on it — goes to
 * audit_dead_letter and counts on `custodian_audit_dead_letters_total` (alert on any increase);
 * reconciliation then lists it.
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
      onDeadLetter: (raw, info) => this.keepRaw(raw, info),
    });
  }

  async handle(event: AuditEvent, meta: EventMeta): Promise<void> {
    try {
      await this.store(event);
    } catch (error) {
      const poison = isDataOrIntegrityError(error) || meta.deliveryCount >= DEAD_LETTER_AFTER;
      if (!poison) throw error; // redelivered with backoff by the bus
      await this.deadLetter(event, meta, error);
    }
  }

  /**
   * The bus's dead-letter hook: a delivery that broke its contract, or that the bus gave up on,
   * kept as received (text, or base64 when the bytes are not text) before the bus drops it.
   */
  async keepRaw(raw: Uint8Array, info: DeadLetterInfo): Promise<void> {
    const text = asText(raw);
    this.logger.error(
      { subject: info.subject, messageId: info.messageId, seq: info.streamSeq, reason: info.reason },
      'audit event dead-lettered',
    );
    await this.insertDeadLetter({
      messageId: info.messageId,
      payload: text ?? Buffer.from(raw).toString('base64'),
      encoding: text === undefined ? 'base64' : 'text',
      reason: info.reason,
      error: info.detail,
      deliveries: info.deliveryCount,
      subject: info.subject,
      streamSeq: info.streamSeq,
      service: serviceOf(text),
    });
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
    await this.insertDeadLetter({
      messageId: meta.messageId,
      payload: JSON.stringify(event),
      encoding: 'text',
      reason: isDataOrIntegrityError(error) ? 'data_error' : 'retries',
      error: String((error as Error)?.message ?? error),
      deliveries: meta.deliveryCount,
      service: String(event.service),
    });
  }

  /**
   * A redelivery of something already dead-lettered (its ack was lost) keeps the first row: the
   * table is append-only (ADR 0010), so it is counted once.
   */
  private async insertDeadLetter(d: {
    messageId: string;
    payload: string;
    encoding: 'text' | 'base64';
    reason: string;
    error: string;
    deliveries: number;
    subject?: string;
    streamSeq?: number;
    service: string;
  }): Promise<void> {
    const inserted = (await this.ds.query(
      `INSERT INTO audit_dead_letter (message_id, payload, payload_encoding, reason, error, deliveries, subject, stream_seq)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (message_id) DO NOTHING RETURNING 1`,
      [
        d.messageId.slice(0, 128),
        d.payload,
        d.encoding,
        d.reason.slice(0, 16),
        d.error.slice(0, 2000),
        d.deliveries,
        d.subject?.slice(0, 128) ?? null,
        d.streamSeq ?? null,
      ],
    )) as unknown[];
    if (inserted.length > 0) this.deadLetters.inc({ service: d.service.slice(0, 32) });
  }
}

/** The bytes as text if they are valid UTF-8 that PostgreSQL can store (no NUL), else undefined. */
function asText(raw: Uint8Array): string | undefined {
  const buf = Buffer.from(raw);
  const text = buf.toString('utf8');
  if (text.includes('\u0000') || !Buffer.from(text, 'utf8').equals(buf)) return undefined;
  return text;
}

/** The producing service named in a payload that failed its contract, as far as it can be read. */
function serviceOf(text: string | undefined): string {
  try {
    const service = (JSON.parse(text ?? '') as { service?: unknown })?.service;
    return typeof service === 'string' && service !== '' ? service : 'unknown';
  } catch {
    return 'unknown';
  }
}
