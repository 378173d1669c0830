import { ErrorCode, type EventContract, type PayloadOf, type RequestContract, type RequestOf, type ResponseOf } from '@custodian/contracts';
import type { Logger } from 'pino';
import { backoffDelayMs, sleep } from '../backoff';
import { CustodianException } from '../errors/custodian.exception';
import { requestContext } from '../context/request-context';
import { clientSpan } from '../tracing/tracing';
import {
  MAX_DELIVER,
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

interface StoredEvent {
  seq: number;
  subject: string;
  messageId: string;
  data: Uint8Array;
}

interface Consumer {
  subject: string;
  handler: EventHandler<EventContract>;
  contract: EventContract;
  nextSeq: number;
  pumping: boolean;
  onDeadLetter?: SubscribeOptions['onDeadLetter'];
}

/**
 * The all-in-one bus: same contracts, validation, JSON round trip, timeouts, queue-group
 * round robin, message-id de-duplication and at-least-once redelivery as NATS, in memory.
 * Durability across restarts comes from the outbox, which re-sends what was not acknowledged.
 */
export class InProcessBus implements Bus {
  readonly kind = 'in-process' as const;
  private readonly codec: BusCodec;
  private readonly handlers = new Map<
    string,
    { contract: RequestContract; handlers: Array<RequestHandler<RequestContract>>; next: number }
  >();
  private readonly log: StoredEvent[] = [];
  private readonly seen = new Map<string, number>();
  private readonly consumers = new Map<string, Consumer>();
  private readonly inflight = new Set<Promise<unknown>>();
  /** Message id → sequence of the accepted copy, so a de-duplicated republish can still be awaited. */
  private readonly seqOf = new Map<string, number>();
  /** Sequences some consumer gave up on (handler failed MAX_DELIVER times): not consumed. */
  private readonly givenUp = new Set<number>();
  private readonly waiters = new Set<{ seq: number; subject: string; done: (consumed: boolean) => void }>();
  private readonly listeners = new Map<string, Array<BroadcastHandler<EventContract>>>();
  private seq = 0;
  private closed = false;

  constructor(
    private readonly logger: Logger,
    private readonly opts: { duplicateWindowMs?: number; retryBaseMs?: number; drainTimeoutMs?: number } = {},
  ) {
    this.codec = new BusCodec(logger);
  }

  isReady(): boolean {
    return !this.closed;
  }

  async request<C extends RequestContract>(contract: C, payload: RequestOf<C>, opts: { timeoutMs?: number } = {}): Promise<ResponseOf<C>> {
    this.assertOpen();
    this.codec.checkOutgoingRequest(contract, payload);
    const entry = this.handlers.get(contract.subject);
    if (!entry || entry.handlers.length === 0) {
      throw new CustodianException(ErrorCode.BusNoResponders, `No service answers ${contract.subject}`);
    }
    const handler = entry.handlers[entry.next++ % entry.handlers.length];
    return clientSpan(`bus request ${contract.subject}`, { 'messaging.destination.name': contract.subject }, (trace) =>
      this.send(contract, handler, payload, opts, trace),
    );
  }

  private async send<C extends RequestContract>(
    contract: C,
    handler: RequestHandler<RequestContract>,
    payload: RequestOf<C>,
    opts: { timeoutMs?: number },
    trace: Record<string, string>,
  ): Promise<ResponseOf<C>> {
    const timeoutMs = opts.timeoutMs ?? contract.timeoutMs;
    const wire = this.codec.encode(payload);
    const requestId = requestContext.requestId();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new CustodianException(ErrorCode.BusTimeout, `${contract.subject} did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    // The responder runs outside the caller's async context, as it would in another process.
    const answered = this.track(
      new Promise<Uint8Array>((resolve, reject) => {
        setImmediate(() => {
          this.codec.answer(contract, handler, wire, requestId, trace).then((reply) => resolve(this.codec.encode(reply)), reject);
        });
      }),
    );
    try {
      const raw = await Promise.race([answered, timeout]);
      return this.codec.unwrapReply(contract, raw) as ResponseOf<C>;
    } finally {
      clearTimeout(timer);
    }
  }

  async handle<C extends RequestContract>(contract: C, handler: RequestHandler<C>): Promise<void> {
    this.assertOpen();
    const entry = this.handlers.get(contract.subject) ?? { contract, handlers: [], next: 0 };
    entry.handlers.push(handler as unknown as RequestHandler<RequestContract>);
    this.handlers.set(contract.subject, entry);
  }

  async publish<E extends EventContract>(contract: E, payload: PayloadOf<E>, { messageId }: { messageId: string }): Promise<void> {
    this.assertOpen();
    const check = this.codec.checkEvent(contract, payload);
    if (!check.ok) {
      throw new CustodianException(ErrorCode.InvalidMessage, `Event ${contract.subject} does not match its contract`, check.issues);
    }
    const now = Date.now();
    const windowMs = this.opts.duplicateWindowMs ?? 120_000;
    const previous = this.seen.get(messageId);
    if (previous !== undefined && now - previous < windowMs) return; // duplicate: absorbed, like JetStream's Nats-Msg-Id
    this.seen.set(messageId, now);
    if (this.seen.size > 100_000) this.pruneSeen(now, windowMs);
    const data = this.codec.encode(payload);
    this.broadcast(contract, data);
    this.log.push({ seq: ++this.seq, subject: contract.subject, messageId, data });
    this.seqOf.set(messageId, this.seq);
    for (const consumer of this.consumers.values()) {
      if (consumer.subject === contract.subject) this.pump(consumer);
    }
  }

  publishMany<E extends EventContract>(
    contract: E,
    events: ReadonlyArray<{ payload: PayloadOf<E>; messageId: string }>,
  ): Promise<Array<PromiseSettledResult<void>>> {
    return Promise.allSettled(events.map((e) => this.publish(contract, e.payload, { messageId: e.messageId })));
  }

  /** `opts.concurrency` is accepted and not needed: in one process, handlers run one at a time. */
  async subscribe<E extends EventContract>(
    contract: E,
    durableName: string,
    handler: EventHandler<E>,
    opts: SubscribeOptions = {},
  ): Promise<void> {
    this.assertOpen();
    if (this.consumers.has(durableName)) throw new Error(`durable consumer ${durableName} already subscribed`);
    const consumer: Consumer = {
      subject: contract.subject,
      contract,
      handler: handler as unknown as EventHandler<EventContract>,
      nextSeq: 1,
      pumping: false,
      onDeadLetter: opts.onDeadLetter,
    };
    this.consumers.set(durableName, consumer);
    this.pump(consumer);
  }

  /** In one process nothing can be missed, so `onGap` is never called. */
  async listen<E extends EventContract>(contract: E, handler: BroadcastHandler<E>, _opts?: ListenOptions): Promise<void> {
    this.assertOpen();
    const list = this.listeners.get(contract.subject) ?? [];
    list.push(handler as unknown as BroadcastHandler<EventContract>);
    this.listeners.set(contract.subject, list);
  }

  /**
   * Resolves true once every durable consumer of the event's subject has handled the event
   * published under `messageId`; false if one gave up on it, on timeout, or if the id is unknown.
   * The outbox relay marks a row sent only after this (all-in-one mode): the in-process bus keeps
   * nothing across a restart, so "published" alone would not be durable.
   */
  whenConsumed(messageId: string, timeoutMs: number): Promise<boolean> {
    const seq = this.seqOf.get(messageId);
    if (seq === undefined) return Promise.resolve(false);
    const subject = this.log.find((e) => e.seq === seq)?.subject;
    const state = subject === undefined ? this.passedState(seq) : this.stateOf(seq, subject);
    if (state !== 'pending') return Promise.resolve(state === 'consumed');
    return new Promise((resolve) => {
      const waiter = {
        seq,
        subject: subject!,
        done: (consumed: boolean): void => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(consumed);
        },
      };
      const timer = setTimeout(() => waiter.done(false), timeoutMs);
      this.waiters.add(waiter);
    });
  }

  async drain(): Promise<void> {
    this.closed = true;
    for (const w of [...this.waiters]) w.done(false);
    await settleWithin([...this.inflight], this.opts.drainTimeoutMs ?? 10_000);
  }

  /** Listeners run synchronously, before publish returns: an invalidation is in effect when the publisher goes on. */
  private broadcast(contract: EventContract, data: Uint8Array): void {
    const list = this.listeners.get(contract.subject);
    if (!list) return;
    for (const listener of list) {
      try {
        // Each listener gets its own decoded copy, as over the wire.
        listener(this.codec.decode(data) as PayloadOf<EventContract>);
      } catch (error) {
        this.logger.error({ err: error, subject: contract.subject }, 'broadcast listener failed');
      }
    }
  }

  private pump(consumer: Consumer): void {
    if (consumer.pumping || this.closed) return;
    consumer.pumping = true;
    const run = async (): Promise<void> => {
      try {
        for (;;) {
          if (this.closed) return;
          const next = this.log.find((e) => e.seq >= consumer.nextSeq && e.subject === consumer.subject);
          if (!next) return;
          await this.deliver(consumer, next);
          consumer.nextSeq = next.seq + 1;
          this.settleWaiters();
          this.trim();
        }
      } finally {
        consumer.pumping = false;
      }
    };
    void this.track(setImmediatePromise().then(run));
  }

  private async deliver(consumer: Consumer, event: StoredEvent): Promise<void> {
    let payload: unknown;
    try {
      payload = this.codec.decode(event.data);
    } catch {
      payload = undefined;
    }
    const check = this.codec.checkEvent(consumer.contract, payload);
    if (!check.ok) {
      this.logger.error(
        { subject: event.subject, messageId: event.messageId, issues: check.issues },
        'poison event: does not match its contract',
      );
      // Like NATS: without a hook it is dropped; with one, redelivered to the hook until it keeps the
      // event. If it never does, the event counts as not consumed, so the relay's retry comes back.
      if (!consumer.onDeadLetter) return;
      const detail = JSON.stringify(check.issues ?? 'not JSON').slice(0, 2000);
      for (let attempt = 1; attempt <= MAX_DELIVER && !this.closed; attempt++) {
        if (await this.deadLetter(consumer, event, 'invalid', attempt, detail)) return;
        await this.backoff(attempt);
      }
      this.givenUp.add(event.seq);
      this.seen.delete(event.messageId);
      return;
    }
    let lastError = '';
    for (let attempt = 1; attempt <= MAX_DELIVER; attempt++) {
      try {
        await consumer.handler(check.value as PayloadOf<EventContract>, { messageId: event.messageId, deliveryCount: attempt });
        return;
      } catch (error) {
        if (this.closed) throw error;
        lastError = String((error as Error)?.message ?? error).slice(0, 2000);
        this.logger.warn({ err: error, subject: event.subject, messageId: event.messageId, attempt }, 'event handler failed; redelivering');
        await this.backoff(attempt);
      }
    }
    this.logger.error({ subject: event.subject, messageId: event.messageId }, 'event given up after max deliveries');
    // Kept by the consumer's dead-letter hook, the event counts as consumed (as a terminated NATS message does).
    if (await this.deadLetter(consumer, event, 'exhausted', MAX_DELIVER, lastError)) return;
    // Not consumed: a republish (the outbox relay retries unacknowledged rows) must be accepted again.
    this.givenUp.add(event.seq);
    this.seen.delete(event.messageId);
  }

  private backoff(attempt: number): Promise<void> {
    return sleep(backoffDelayMs({ baseMs: this.opts.retryBaseMs ?? 50, capMs: 2000 }, attempt - 1));
  }

  /** Hands an event to the consumer's dead-letter hook; true once it is kept. */
  private async deadLetter(
    consumer: Consumer,
    event: StoredEvent,
    reason: DeadLetterInfo['reason'],
    deliveryCount: number,
    detail: string,
  ): Promise<boolean> {
    if (!consumer.onDeadLetter) return false;
    try {
      await consumer.onDeadLetter(event.data, {
        reason,
        subject: event.subject,
        messageId: event.messageId,
        streamSeq: event.seq,
        deliveryCount,
        detail,
      });
      return true;
    } catch (error) {
      this.logger.error({ err: error, subject: event.subject, messageId: event.messageId }, 'dead-letter hook failed');
      return false;
    }
  }

  private stateOf(seq: number, subject: string): 'pending' | 'consumed' | 'failed' {
    if (this.givenUp.has(seq)) return 'failed';
    const interested = [...this.consumers.values()].filter((c) => c.subject === subject);
    if (interested.length === 0 || interested.some((c) => c.nextSeq <= seq)) return 'pending';
    return 'consumed';
  }

  /** The event was trimmed from the log: every consumer passed it. */
  private passedState(seq: number): 'consumed' | 'failed' {
    return this.givenUp.has(seq) ? 'failed' : 'consumed';
  }

  private settleWaiters(): void {
    for (const w of [...this.waiters]) {
      const state = this.stateOf(w.seq, w.subject);
      if (state !== 'pending') w.done(state === 'consumed');
    }
  }

  /** Drops events every consumer of their subject has passed; keeps events nobody consumes yet. */
  private trim(): void {
    let cut = 0;
    while (cut < this.log.length) {
      const e = this.log[cut];
      const interested = [...this.consumers.values()].filter((c) => c.subject === e.subject);
      if (interested.length === 0 || interested.some((c) => c.nextSeq <= e.seq)) break;
      cut++;
    }
    if (cut > 0) this.log.splice(0, cut);
  }

  private pruneSeen(now: number, windowMs: number): void {
    for (const [id, at] of this.seen) if (now - at >= windowMs) this.seen.delete(id);
    const oldest = this.log[0]?.seq ?? this.seq + 1;
    for (const [id, seq] of this.seqOf) if (seq < oldest && !this.seen.has(id)) this.seqOf.delete(id);
    for (const seq of this.givenUp) if (seq < oldest) this.givenUp.delete(seq);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p)).catch(() => undefined);
    return p;
  }

  private assertOpen(): void {
    if (this.closed) throw new CustodianException(ErrorCode.ServiceUnavailable, 'The bus is closed');
  }
}

function setImmediatePromise(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
