import type { Static, TSchema } from '@sinclair/typebox';

/**
 * A request/reply message: one constant holds the subject, the request schema and the response
 * schema, so `bus.request(Contract, payload)` is typed end to end and both sides validate.
 * `service` names the queue group that answers it.
 */
export interface RequestContract<Req extends TSchema = TSchema, Res extends TSchema = TSchema> {
  readonly kind: 'request';
  readonly subject: string;
  readonly service: ServiceName;
  readonly request: Req;
  readonly response: Res;
  /** Default timeout for callers; a call may pass its own, but every call has one. */
  readonly timeoutMs: number;
}

/** A durable event: subject (under `evt.`) and payload schema. Delivered at least once. */
export interface EventContract<P extends TSchema = TSchema> {
  readonly kind: 'event';
  readonly subject: string;
  readonly payload: P;
}

export type RequestOf<C extends RequestContract> = Static<C['request']>;
export type ResponseOf<C extends RequestContract> = Static<C['response']>;
export type PayloadOf<C extends EventContract> = Static<C['payload']>;

export const SERVICE_NAMES = ['identity', 'objects', 'agent-gateway', 'approvals', 'audit'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

const SUBJECT = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$/;

export function defineRequest<Req extends TSchema, Res extends TSchema>(def: {
  subject: string;
  service: ServiceName;
  request: Req;
  response: Res;
  timeoutMs?: number;
}): RequestContract<Req, Res> {
  if (!SUBJECT.test(def.subject) || def.subject.startsWith('evt.')) {
    throw new Error(`invalid request subject: ${def.subject}`);
  }
  return Object.freeze({ kind: 'request' as const, timeoutMs: 3000, ...def });
}

export function defineEvent<P extends TSchema>(def: { subject: string; payload: P }): EventContract<P> {
  if (!SUBJECT.test(def.subject) || !def.subject.startsWith('evt.')) {
    throw new Error(`invalid event subject (must start with evt.): ${def.subject}`);
  }
  return Object.freeze({ kind: 'event' as const, ...def });
}
