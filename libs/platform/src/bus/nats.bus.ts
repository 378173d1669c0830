import {
  AckPolicy,
  DeliverPolicy,
  ErrorCode as NatsErrorCode,
  StorageType,
  connect,
  headers,
  nanos,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
  type Subscription,
} from 'nats';
import { ErrorCode, type EventContract, type PayloadOf, type RequestContract, type RequestOf, type ResponseOf } from '@custodian/contracts';
import type { Logger } from 'pino';
import { CustodianException } from '../errors/custodian.exception';
import { requestContext } from '../context/request-context';
import {
  MAX_DELIVER,
  REQUEST_ID_HEADER,
  settleWithin,
  type Bus,
  type EventHandler,
  type RequestHandler,
  type SubscribeOptions,
} from './bus';
import { BusCodec } from './bus-codec';

export interface NatsBusOptions {
  url: string;
  /** Prefix of every subject and of the stream name, so several installs (or test runs) share a NATS. */
  namespace: string;
  /** Client name shown by the NATS server. */
  name: string;
  duplicateWindowMs?: number;
  ackWaitMs?: number;
  /** How long drain() waits for in-flight handlers before closing anyway. */
  drainTimeoutMs?: number;
}

/**
 * NATS transport: request/reply over core NATS with one queue group per service; durable events
 * over JetStream (file storage, Nats-Msg-Id de-duplication, explicit-ack pull consumers).
 */
export class NatsBus implements Bus {
  readonly kind = 'nats' as const;
  private readonly codec: BusCodec;
  private readonly subscriptions: Subscription[] = [];
  private readonly consumers: ConsumerMessages[] = [];
  private readonly loops: Promise<void>[] = [];
  private readonly inflight = new Set<Promise<unknown>>();
  private closing = false;
  private connected = true;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly opts: NatsBusOptions,
    private readonly logger: Logger,
  ) {
    this.codec = new BusCodec(logger);
  }

  static async connect(opts: NatsBusOptions, logger: Logger): Promise<NatsBus> {
    const nc = await connect({ servers: opts.url, name: opts.name, maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: 5000 });
    const jsm = await nc.jetstreamManager();
    const bus = new NatsBus(nc, nc.jetstream(), jsm, opts, logger);
    await bus.ensureStream();
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'disconnect') bus.connected = false;
        if (status.type === 'reconnect') bus.connected = true;
        logger.info({ natsStatus: status.type }, 'nats status');
      }
    })();
    return bus;
  }

  get streamName(): string {
    return `${this.opts.namespace.toUpperCase()}_EVENTS`;
  }

  isReady(): boolean {
    return this.connected && !this.closing && !this.nc.isClosed() && !this.nc.isDraining();
  }

  async request<C extends RequestContract>(contract: C, payload: RequestOf<C>, opts: { timeoutMs?: number } = {}): Promise<ResponseOf<C>> {
    this.codec.checkOutgoingRequest(contract, payload);
    const h = headers();
    const requestId = requestContext.requestId();
    if (requestId) h.set(REQUEST_ID_HEADER, requestId);
    const timeoutMs = opts.timeoutMs ?? contract.timeoutMs;
    try {
      const reply = await this.nc.request(this.subject(contract.subject), this.codec.encode(payload), { timeout: timeoutMs, headers: h });
      return this.codec.unwrapReply(contract, reply.data) as ResponseOf<C>;
    } catch (error) {
      if (error instanceof CustodianException) throw error;
      const code = (error as { code?: string }).code;
      if (code === NatsErrorCode.NoResponders)
        throw new CustodianException(ErrorCode.BusNoResponders, `No service answers ${contract.subject}`);
      if (code === NatsErrorCode.Timeout)
        throw new CustodianException(ErrorCode.BusTimeout, `${contract.subject} did not answer within ${timeoutMs} ms`);
      this.logger.error({ err: error, subject: contract.subject }, 'bus request failed');
      throw new CustodianException(ErrorCode.ServiceUnavailable, 'The bus is not available');
    }
  }

  async handle<C extends RequestContract>(contract: C, handler: RequestHandler<C>): Promise<void> {
    const sub = this.nc.subscribe(this.subject(contract.subject), {
      queue: `${this.opts.namespace}.svc.${contract.service}`,
      callback: (err, msg) => {
        if (err) {
          this.logger.error({ err, subject: contract.subject }, 'subscription error');
          return;
        }
        const work = this.codec
          .answer(
            contract,
            handler as unknown as RequestHandler<RequestContract>,
            msg.data,
            msg.headers?.get(REQUEST_ID_HEADER) || undefined,
          )
          .then((reply) => {
            if (msg.reply) msg.respond(this.codec.encode(reply));
          })
          .catch((error: unknown) => this.logger.error({ err: error, subject: contract.subject }, 'reply failed'));
        this.track(work);
      },
    });
    this.subscriptions.push(sub);
    await this.nc.flush();
  }

  async publish<E extends EventContract>(contract: E, payload: PayloadOf<E>, { messageId }: { messageId: string }): Promise<void> {
    const check = this.codec.checkEvent(contract, payload);
    if (!check.ok)
      throw new CustodianException(ErrorCode.InvalidMessage, `Event ${contract.subject} does not match its contract`, check.issues);
    const h = headers();
    const requestId = requestContext.requestId();
    if (requestId) h.set(REQUEST_ID_HEADER, requestId);
    try {
      await this.js.publish(this.subject(contract.subject), this.codec.encode(payload), { msgID: messageId, headers: h, timeout: 5000 });
    } catch (error) {
      this.logger.warn({ err: error, subject: contract.subject }, 'publish failed');
      throw new CustodianException(ErrorCode.ServiceUnavailable, 'The event stream is not available');
    }
  }

  async subscribe<E extends EventContract>(
    contract: E,
    durableName: string,
    handler: EventHandler<E>,
    opts: SubscribeOptions = {},
  ): Promise<void> {
    const concurrency = Math.max(1, Math.min(4096, Math.floor(opts.concurrency ?? 1)));
    const durable = `${this.opts.namespace}_${durableName}`.replace(/[^A-Za-z0-9_-]/g, '_');
    await this.jsm.consumers.add(this.streamName, {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: this.subject(contract.subject),
      max_deliver: MAX_DELIVER,
      ack_wait: nanos(this.opts.ackWaitMs ?? 30_000),
    });
    const consumer = await this.js.consumers.get(this.streamName, durable);
    const messages = await consumer.consume({ max_messages: Math.max(256, concurrency) });
    this.consumers.push(messages);
    const running = new Set<Promise<void>>();
    this.loops.push(
      (async () => {
        for await (const m of messages) {
          let payload: unknown;
          try {
            payload = this.codec.decode(m.data);
          } catch {
            payload = undefined;
          }
          const check = this.codec.checkEvent(contract, payload);
          if (!check.ok) {
            this.logger.error({ subject: m.subject, seq: m.seq, issues: check.issues }, 'poison event terminated');
            m.term('does not match its contract');
            continue;
          }
          const messageId = m.headers?.get('Nats-Msg-Id') || `${this.streamName}:${m.seq}`;
          const requestId = m.headers?.get(REQUEST_ID_HEADER) || messageId;
          const work = requestContext
            .run({ requestId }, () => handler(check.value as PayloadOf<E>, { messageId, deliveryCount: m.info.redeliveryCount }))
            .then(
              () => m.ack(),
              (error: unknown) => {
                this.logger.warn({ err: error, subject: m.subject, messageId }, 'event handler failed; redelivering');
                m.nak(Math.min(5000, 100 * 2 ** Math.min(6, m.info.redeliveryCount)));
              },
            );
          this.track(work);
          running.add(work);
          void work.finally(() => running.delete(work));
          if (running.size >= concurrency) await Promise.race(running);
        }
        await Promise.allSettled(running);
      })(),
    );
  }

  async drain(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const sub of this.subscriptions) sub.unsubscribe();
    for (const c of this.consumers) c.stop();
    await settleWithin([...this.inflight, ...this.loops], this.opts.drainTimeoutMs ?? 10_000);
    if (!this.nc.isClosed()) await this.nc.drain();
  }

  /** Removes this namespace's stream (tests and uninstall only). */
  async deleteStream(): Promise<void> {
    await this.jsm.streams.delete(this.streamName).catch(() => undefined);
  }

  private subject(s: string): string {
    return `${this.opts.namespace}.${s}`;
  }

  private async ensureStream(): Promise<void> {
    const config = {
      name: this.streamName,
      subjects: [`${this.opts.namespace}.evt.>`],
      storage: StorageType.File,
      duplicate_window: nanos(this.opts.duplicateWindowMs ?? 120_000),
    };
    try {
      await this.jsm.streams.info(this.streamName);
      await this.jsm.streams.update(this.streamName, config);
    } catch {
      await this.jsm.streams.add(config);
    }
  }

  private track<T>(p: Promise<T>): void {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p)).catch(() => undefined);
  }
}
