import { AuditEventRecorded, type AuditEvent } from '@custodian/contracts';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import type { Bus } from '../bus/bus';
import type { OutboxWriter } from './outbox.writer';

/**
 * Publishes committed outbox rows to the bus with the event id as message id, then marks them
 * sent. A crash between publish and mark republishes; the message id (and the audit store's
 * unique key) absorbs the duplicate. Rows are claimed with SKIP LOCKED so replicas share the work.
 */
export class OutboxRelay {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private wakeRequested = false;
  private failures = 0;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly ds: DataSource,
    private readonly bus: Bus,
    private readonly writer: OutboxWriter,
    private readonly logger: Logger,
    private readonly opts: { pollMs?: number; batchSize?: number } = {},
  ) {}

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

  /** One pass: publish up to a batch; returns how many rows were sent. */
  async relayOnce(): Promise<number> {
    const batch = this.opts.batchSize ?? 200;
    return this.ds.transaction(async (manager) => {
      const rows: Array<{ id: string; payload: AuditEvent }> = await manager.query(
        `SELECT id, payload FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [batch],
      );
      const sent: string[] = [];
      for (const row of rows) {
        try {
          await this.bus.publish(AuditEventRecorded, row.payload, { messageId: row.id });
          sent.push(row.id);
        } catch (error) {
          this.logger.warn({ err: error, eventId: row.id }, 'outbox publish failed; will retry');
          await manager.query(`UPDATE outbox SET attempts = attempts + 1 WHERE id = $1`, [row.id]);
          break; // keep order: do not publish later rows past a failed one
        }
      }
      if (sent.length > 0) await manager.query(`UPDATE outbox SET published_at = now() WHERE id = ANY($1::uuid[])`, [sent]);
      return sent.length;
    });
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
      if (sent > 0 || this.wakeRequested) next = 0;
    } catch (error) {
      this.failures++;
      next = Math.min(10_000, 200 * 2 ** Math.min(6, this.failures));
      this.logger.warn({ err: error, retryInMs: next }, 'outbox relay pass failed');
    }
    this.schedule(next);
  }
}
