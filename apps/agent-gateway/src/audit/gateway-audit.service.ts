import { Inject, Injectable } from '@nestjs/common';
import { AuditEventRecorded, type AuditEvent, type PrincipalSnapshot } from '@custodian/contracts';
import { agentOf, OutboxWriter, SERVICE_DATA_SOURCE, type AuditEventInput } from '@custodian/platform';
import type { DataSource } from 'typeorm';

/** Most events in one INSERT. */
const MAX_BATCH = 100;
/**
 * The relay is woken at most this often for gateway events: it then publishes what accumulated in
 * one pass (one claim, one audit-chain transaction) instead of one pass per tool call. The rows are
 * committed before the caller goes on either way; this only delays their way into the audit store.
 */
export const RELAY_WAKE_MS = 100;

/** The actor of a gateway event: the user, the credential, and the agent when a delegated token acts. */
export function actorOf(principal: PrincipalSnapshot): AuditEvent['actor'] {
  const agent = agentOf(principal);
  return {
    userId: principal.userId,
    ...(principal.sessionId ? { sessionId: principal.sessionId } : {}),
    ...(principal.apiKeyId ? { apiKeyId: principal.apiKeyId } : {}),
    ...(agent ? { agent } : {}),
  };
}

interface Waiting {
  event: AuditEvent;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Writes the gateway's audit events (sessions, tool calls) to its outbox. The actor is stated
 * explicitly rather than taken from the request context: session ends happen on timers, outside
 * any request.
 *
 * Group commit: `record` resolves once its event's row is committed — a caller never goes on
 * (a read never hands out its data) before that — but concurrent calls share statements. The
 * first event is written at once; events that arrive while a write is in flight go together in
 * the next multi-row INSERT (one statement, atomic by itself). A failed batch is retried event by event, so one event's failure never fails another.
 * The relay is woken at most every RELAY_WAKE_MS for these events, so it publishes them in batches.
 */
@Injectable()
export class GatewayAudit {
  private readonly queue: Waiting[] = [];
  private flushing = false;
  private wakeTimer: NodeJS.Timeout | undefined;

  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
  ) {}

  record(principal: PrincipalSnapshot, event: Omit<AuditEventInput, 'orgId' | 'actor'>): Promise<void> {
    let prepared: AuditEvent;
    try {
      // Backpressure, redaction and the schema are checked now, in the caller's request context.
      prepared = this.prepare(principal, event);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.write(prepared);
  }

  /**
   * The event `record` would write, checked the same way (backpressure, redaction, schema), for a
   * caller that writes its outbox row itself in one statement with what the event is about (the
   * agent runtime's step commit): id, subject AuditEventRecorded.subject, the event as payload.
   */
  prepare(principal: PrincipalSnapshot, event: Omit<AuditEventInput, 'orgId' | 'actor'>): AuditEvent {
    return this.outbox.prepare({ ...event, orgId: principal.orgId, actor: actorOf(principal) });
  }

  /** Writes a prepared event (group-committed like `record`); resolves once its row is committed. */
  write(prepared: AuditEvent): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ event: prepared, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, MAX_BATCH);
        try {
          await this.insert(batch.map((w) => w.event));
          for (const w of batch) w.resolve();
        } catch (error) {
          if (batch.length === 1) batch[0].reject(error);
          else
            for (const w of batch) {
              await this.insert([w.event]).then(w.resolve, w.reject);
            }
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private async insert(events: AuditEvent[]): Promise<void> {
    const params: unknown[] = [];
    const rows = events.map((e, i) => {
      params.push(e.id, AuditEventRecorded.subject, JSON.stringify(e));
      return `($${3 * i + 1}, $${3 * i + 2}, $${3 * i + 3}::jsonb)`;
    });
    await this.ds.query(`INSERT INTO outbox (id, subject, payload) VALUES ${rows.join(', ')}`, params);
    this.wakeRelay();
  }

  private wakeRelay(): void {
    if (this.wakeTimer) return;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      this.outbox.appended();
    }, RELAY_WAKE_MS);
    // A pending wake never holds the process open; the relay also polls on its own.
    this.wakeTimer.unref();
  }
}
