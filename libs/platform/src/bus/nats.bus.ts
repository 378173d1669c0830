import {
  AckPolicy,
  DeliverPolicy,
  ErrorCode as NatsErrorCode,
  StorageType,
  connect,
  createInbox,
  headers,
  nanos,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
  type Subscription,
} from 'nats';
import { ErrorCode, type EventContract, type PayloadOf, type RequestContract, type RequestOf, type ResponseOf } from '@custodian/contracts';
import { isPolicyError } from '@custodian/policy';
import type { Logger } from 'pino';
import { backoffDelayMs } from '../backoff';
import { CustodianException } from '../errors/custodian.exception';
import { requestContext } from '../context/request-context';
import { clientSpan } from '../tracing/tracing';
import {
  MAX_DELIVER,
  REQUEST_ID_HEADER,
  settleWithin,
  type BroadcastHandler,
  type Bus,
  type DeadLetterInfo,
  type EventHandler,
  type ListenOptions,
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
  /** Redelivery delay after a failed handler: full jitter up to base * 2^deliveries, capped at 5 s (default 100 ms). */
  nakBaseMs?: number;
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
  /** publishMany: one reply subscription for every PubAck (`<inbox>.<n>`), and who waits for which. */
  private ackInbox: string | undefined;
  private ackSeq = 0;
  private readonly pendingAcks = new Map<string, (error: Error | undefined) => void>();
  private readonly gapListeners = new Set<() => void>();

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
    // noAsyncTraces: no stack captured per request/publish/ack up front (a measurable share of the
    // CPU per event on the audit path); errors still carry their code and message.
    const nc = await connect({
      servers: opts.url,
      name: opts.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      timeout: 5000,
      noAsyncTraces: true,
    });
    const jsm = await nc.jetstreamManager();
    const bus = new NatsBus(nc, nc.jetstream(), jsm, opts, logger);
    await bus.ensureStream();
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'disconnect') bus.connected = false;
        if (status.type === 'reconnect') bus.connected = true;
        // Broadcasts sent while the connection was down are lost: listeners must forget (on both edges).
        if (status.type === 'disconnect' || status.type === 'reconnect') bus.gap();
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
    return clientSpan(
      `bus request ${contract.subject}`,
      { 'messaging.system': 'nats', 'messaging.destination.name': contract.subject },
      (trace) => this.send(contract, payload, opts, trace),
    );
  }

  private async send<C extends RequestContract>(
    contract: C,
    payload: RequestOf<C>,
    opts: { timeoutMs?: number },
    trace: Record<string, string>,
  ): Promise<ResponseOf<C>> {
    const h = headers();
    const requestId = requestContext.requestId();
    if (requestId) h.set(REQUEST_ID_HEADER, requestId);
    // W3C trace context (traceparent, tracestate) as NATS headers: the responder continues the trace.
    for (const [k, v] of Object.entries(trace)) h.set(k, v);
    const timeoutMs = opts.timeoutMs ?? contract.timeoutMs;
    try {
      const reply = await this.nc.request(this.subject(contract.subject), this.codec.encode(payload), { timeout: timeoutMs, headers: h });
      return this.codec.unwrapReply(contract, reply.data) as ResponseOf<C>;
    } catch (error) {
      // The peer's answer, unwrapped: a refusal with its code, not a bus failure.
      if (error instanceof CustodianException || isPolicyError(error)) throw error;
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
            traceCarrierOf(msg.headers),
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

  /**
   * Pipelined JetStream publishes: every message of the batch goes out at once (same subject,
   * payload and headers as `publish`: Nats-Msg-Id = messageId), each with its own reply subject on
   * one shared inbox subscription, and the PubAcks are awaited together under one timeout. A
   * message counts as published only when its PubAck names a stream (stored); an error reply, a
   * no-responders status or no answer in time fails that message alone.
   */
  async publishMany<E extends EventContract>(
    contract: E,
    events: ReadonlyArray<{ payload: PayloadOf<E>; messageId: string }>,
  ): Promise<Array<PromiseSettledResult<void>>> {
    const results = new Array<PromiseSettledResult<void>>(events.length);
    const unavailable = (): CustodianException => new CustodianException(ErrorCode.ServiceUnavailable, 'The event stream is not available');
    let inbox: string;
    try {
      inbox = this.ensureAckInbox();
    } catch (error) {
      this.logger.warn({ err: error, subject: contract.subject }, 'publish failed');
      return events.map(() => ({ status: 'rejected', reason: unavailable() }));
    }
    const subject = this.subject(contract.subject);
    const requestId = requestContext.requestId();
    const tokens: string[] = [];
    const waits: Array<Promise<void>> = [];
    let failures = 0;
    events.forEach(({ payload, messageId }, i) => {
      const check = this.codec.checkEvent(contract, payload);
      if (!check.ok) {
        results[i] = {
          status: 'rejected',
          reason: new CustodianException(ErrorCode.InvalidMessage, `Event ${contract.subject} does not match its contract`, check.issues),
        };
        return;
      }
      const token = `${inbox}.${++this.ackSeq}`;
      tokens.push(token);
      waits.push(
        new Promise<void>((resolve) => {
          this.pendingAcks.set(token, (error) => {
            if (error) failures++;
            results[i] = error ? { status: 'rejected', reason: unavailable() } : { status: 'fulfilled', value: undefined };
            resolve();
          });
        }),
      );
      try {
        const h = headers();
        h.set('Nats-Msg-Id', messageId);
        if (requestId) h.set(REQUEST_ID_HEADER, requestId);
        this.nc.publish(subject, this.codec.encode(payload), { reply: token, headers: h });
      } catch (error) {
        this.settleAck(token, error as Error);
      }
    });
    const timer = setTimeout(() => {
      for (const token of tokens) this.settleAck(token, new Error('no PubAck in time'));
    }, 5000);
    await Promise.all(waits);
    clearTimeout(timer);
    if (failures > 0) this.logger.warn({ subject: contract.subject, failed: failures, of: events.length }, 'publish failed');
    return results;
  }

  async subscribe<E extends EventContract>(
    contract: E,
    durableName: string,
    handler: EventHandler<E>,
    opts: SubscribeOptions = {},
  ): Promise<void> {
    const concurrency = Math.max(1, Math.min(4096, Math.floor(opts.concurrency ?? 1)));
    const durable = this.durableOf(durableName);
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
          const messageId = m.headers?.get('Nats-Msg-Id') || `${this.streamName}:${m.seq}`;
          const deadLetter = (reason: DeadLetterInfo['reason'], detail: string): Promise<boolean> =>
            this.deadLetter(opts, m.data, {
              reason,
              subject: contract.subject,
              messageId,
              streamSeq: m.seq,
              deliveryCount: m.info.redeliveryCount,
              detail,
            });
          const nakDelay = (): number =>
            backoffDelayMs({ baseMs: this.opts.nakBaseMs ?? 100, capMs: 5000, maxExponent: 6 }, m.info.redeliveryCount);
          if (!check.ok) {
            this.logger.error({ subject: m.subject, seq: m.seq, issues: check.issues }, 'poison event: does not match its contract');
            // Kept by the consumer's dead-letter hook before it is terminated; retried if the hook fails.
            // term() without a reason: nats-server < 2.10 ignores `+TERM <reason>`, leaving the message pending.
            const work = deadLetter('invalid', JSON.stringify(check.issues ?? 'not JSON').slice(0, 2000)).then((kept) =>
              kept || !opts.onDeadLetter ? m.term() : m.nak(nakDelay()),
            );
            this.track(work);
            await work;
            continue;
          }
          const requestId = m.headers?.get(REQUEST_ID_HEADER) || messageId;
          const work = requestContext
            .run({ requestId }, () => handler(check.value as PayloadOf<E>, { messageId, deliveryCount: m.info.redeliveryCount }))
            .then(
              () => m.ack(),
              async (error: unknown) => {
                if (m.info.redeliveryCount >= MAX_DELIVER) {
                  // JetStream will not deliver it again: the last chance to keep it.
                  this.logger.error({ err: error, subject: m.subject, messageId }, 'event given up after max deliveries');
                  if (await deadLetter('exhausted', String((error as Error)?.message ?? error).slice(0, 2000))) return m.term();
                }
                this.logger.warn({ err: error, subject: m.subject, messageId }, 'event handler failed; redelivering');
                m.nak(nakDelay());
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

  /**
   * A core subscription without queue group on the event's subject: JetStream publishes are plain
   * NATS publishes, so every listening process sees each event as the stream stores it.
   */
  async listen<E extends EventContract>(contract: E, handler: BroadcastHandler<E>, opts: ListenOptions = {}): Promise<void> {
    if (opts.onGap) this.gapListeners.add(opts.onGap);
    const sub = this.nc.subscribe(this.subject(contract.subject), {
      callback: (err, msg) => {
        if (err) {
          this.logger.error({ err, subject: contract.subject }, 'broadcast subscription error');
          opts.onGap?.();
          return;
        }
        let payload: unknown;
        try {
          payload = this.codec.decode(msg.data);
        } catch {
          payload = undefined;
        }
        const check = this.codec.checkEvent(contract, payload);
        if (!check.ok) {
          this.logger.error({ subject: msg.subject, issues: check.issues }, 'broadcast event does not match its contract; ignored');
          return;
        }
        try {
          handler(check.value as PayloadOf<E>);
        } catch (error) {
          this.logger.error({ err: error, subject: contract.subject }, 'broadcast listener failed');
        }
      },
    });
    this.subscriptions.push(sub);
    await this.nc.flush();
  }

  async drain(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const sub of this.subscriptions) sub.unsubscribe();
    for (const c of this.consumers) c.stop();
    await settleWithin([...this.inflight, ...this.loops], this.opts.drainTimeoutMs ?? 10_000);
    if (!this.nc.isClosed()) await this.nc.drain();
  }

  /**
   * How far a durable consumer of this namespace is behind: messages not yet delivered plus those
   * delivered and not yet acknowledged (the outbox relay pauses above a limit, F5).
   */
  async consumerLag(durableName: string): Promise<number> {
    const info = await this.jsm.consumers.info(this.streamName, this.durableOf(durableName));
    return info.num_pending + info.num_ack_pending;
  }

  /** Removes this namespace's stream (tests and uninstall only). */
  async deleteStream(): Promise<void> {
    await this.jsm.streams.delete(this.streamName).catch(() => undefined);
  }

  private durableOf(durableName: string): string {
    return `${this.opts.namespace}_${durableName}`.replace(/[^A-Za-z0-9_-]/g, '_');
  }

  /** Hands a delivery to the subscriber's dead-letter hook; true once it is kept. */
  private async deadLetter(opts: SubscribeOptions, raw: Uint8Array, info: DeadLetterInfo): Promise<boolean> {
    if (!opts.onDeadLetter) return false;
    try {
      await opts.onDeadLetter(raw, info);
      return true;
    } catch (error) {
      this.logger.error({ err: error, subject: info.subject, messageId: info.messageId }, 'dead-letter hook failed');
      return false;
    }
  }

  private gap(): void {
    for (const listener of this.gapListeners) {
      try {
        listener();
      } catch (error) {
        this.logger.error({ err: error }, 'gap listener failed');
      }
    }
  }

  private ensureAckInbox(): string {
    if (this.ackInbox) return this.ackInbox;
    const inbox = createInbox();
    // Not in `subscriptions`: nc.drain() drains it last, so acks for publishes already sent still arrive.
    this.nc.subscribe(`${inbox}.*`, {
      callback: (err, msg) => {
        if (err) return; // the subscription itself failed: waiting publishes time out
        let error: Error | undefined;
        if (msg.headers?.hasError) error = new Error(`PubAck status ${msg.headers.code}`);
        else {
          try {
            const ack = JSON.parse(Buffer.from(msg.data).toString('utf8')) as { stream?: unknown; error?: unknown };
            if (ack.error || typeof ack.stream !== 'string' || ack.stream === '') error = new Error('PubAck refused the message');
          } catch {
            error = new Error('PubAck is not valid JSON');
          }
        }
        this.settleAck(msg.subject, error);
      },
    });
    this.ackInbox = inbox;
    return inbox;
  }

  private settleAck(token: string, error: Error | undefined): void {
    const settle = this.pendingAcks.get(token);
    if (!settle) return;
    this.pendingAcks.delete(token);
    settle(error);
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

/** The W3C trace context a request carried in its NATS headers, if any. */
function traceCarrierOf(h: { get(key: string): string } | undefined): Record<string, string> | undefined {
  const traceparent = h?.get('traceparent');
  if (!traceparent) return undefined;
  const tracestate = h?.get('tracestate');
  return tracestate ? { traceparent, tracestate } : { traceparent };
}
