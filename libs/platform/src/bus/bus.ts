import type { EventContract, PayloadOf, RequestContract, RequestOf, ResponseOf } from '@custodian/contracts';

export const BUS = Symbol('BUS');

export interface RequestMeta {
  requestId: string;
}

export interface EventMeta {
  messageId: string;
  /** 1 on first delivery; higher on redelivery (at-least-once). */
  deliveryCount: number;
}

export interface SubscribeOptions {
  /**
   * How many deliveries may be handled at once (default 1: strictly in order). Each message is
   * still acknowledged only after its own handler finished. For handlers that batch their work
   * (the audit store) and do not depend on order. The in-process bus may run them one by one.
   */
  concurrency?: number;
  /**
   * Called with the raw bytes of a delivery the consumer cannot take: its payload fails the
   * contract (`invalid`), or its handler failed MAX_DELIVER times (`exhausted`). Once it resolves
   * the message is settled for good (terminated); if it rejects, an invalid message is redelivered
   * (so the hook runs again) and an exhausted one is given up (logged). Without a hook both are
   * only logged and given up. For consumers that must keep what they cannot process (the audit
   * store's dead letters, A9).
   */
  onDeadLetter?: (raw: Uint8Array, info: DeadLetterInfo) => Promise<void>;
}

/** What the bus knows about a delivery it hands to `SubscribeOptions.onDeadLetter`. */
export interface DeadLetterInfo {
  reason: 'invalid' | 'exhausted';
  /** The contract's subject (without any namespace). */
  subject: string;
  /** Nats-Msg-Id / publish messageId; on NATS `<stream>:<seq>` when the publisher set none. */
  messageId: string;
  /** Position in the stream (NATS) or in the in-process log. */
  streamSeq: number;
  deliveryCount: number;
  /** Why: the contract's issues or the handler's last error, as text. */
  detail: string;
}

export type RequestHandler<C extends RequestContract> = (payload: RequestOf<C>, meta: RequestMeta) => Promise<ResponseOf<C>>;
export type EventHandler<E extends EventContract> = (payload: PayloadOf<E>, meta: EventMeta) => Promise<void>;
export type BroadcastHandler<E extends EventContract> = (payload: PayloadOf<E>) => void;

export interface ListenOptions {
  /**
   * Called when broadcasts may have been missed (the connection dropped or came back): a cache fed
   * by `listen` must forget everything then.
   */
  onGap?: () => void;
}

/**
 * The one bus API every service uses, implemented twice with the same semantics: NATS (core
 * request/reply with a queue group per service; JetStream for durable events) and in-process
 * (all-in-one mode). The same contract suite runs against both (test/contract).
 */
export interface Bus {
  readonly kind: 'nats' | 'in-process';
  /** Sends a request and waits for its reply; always bounded by a timeout. */
  request<C extends RequestContract>(contract: C, payload: RequestOf<C>, opts?: { timeoutMs?: number }): Promise<ResponseOf<C>>;
  /** Answers requests for a contract; replicas of one service share the work (queue group). */
  handle<C extends RequestContract>(contract: C, handler: RequestHandler<C>): Promise<void>;
  /** Publishes a durable event; `messageId` de-duplicates republishes. */
  publish<E extends EventContract>(contract: E, payload: PayloadOf<E>, opts: { messageId: string }): Promise<void>;
  /**
   * Publishes several durable events at once, each exactly as `publish` would (validated, its own
   * `messageId`), and settles once every one is accepted or failed: one result per event, in order
   * (fulfilled = accepted, on NATS stored by JetStream). Never rejects as a whole.
   */
  publishMany<E extends EventContract>(
    contract: E,
    events: ReadonlyArray<{ payload: PayloadOf<E>; messageId: string }>,
  ): Promise<Array<PromiseSettledResult<void>>>;
  /**
   * Consumes events durably: a named consumer resumes where it stopped; a handler error redelivers.
   * Handlers run one at a time (in stream order) unless `concurrency` allows more in flight.
   */
  subscribe<E extends EventContract>(contract: E, durableName: string, handler: EventHandler<E>, opts?: SubscribeOptions): Promise<void>;
  /**
   * Fan-out, at most once, from now on: EVERY process listening gets every event published on the
   * contract's subject after it started listening (no queue group, no durable state, no ack). For
   * cache invalidation only — durable work uses `subscribe`. A handler must be quick, idempotent (a
   * republish of one message id may be broadcast again) and must not throw (errors are logged);
   * `onGap` tells the listener when it may have missed events.
   */
  listen<E extends EventContract>(contract: E, handler: BroadcastHandler<E>, opts?: ListenOptions): Promise<void>;
  /** True while the bus can carry traffic (readiness). */
  isReady(): boolean;
  /** Stops taking new work, lets in-flight handlers finish, closes. */
  drain(): Promise<void>;
}

/** On the wire, a reply is either data or the typed error envelope. */
export type ReplyEnvelope =
  { ok: true; data: unknown } | { ok: false; error: { code: string; message: string; details?: unknown; requestId?: string } };

export const REQUEST_ID_HEADER = 'x-request-id';
/** Events that fail this many deliveries are given up (dead-lettered by the audit issue's work). */
export const MAX_DELIVER = 10;

/** Waits for the promises to settle, but never longer than `ms` (a stuck handler cannot block shutdown). */
export async function settleWithin(promises: Array<Promise<unknown>>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.allSettled(promises), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
