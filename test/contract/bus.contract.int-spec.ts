import { Type } from '@sinclair/typebox';
import { ErrorCode, defineEvent, defineRequest } from '@custodian/contracts';
import { CustodianException, requestContext, type Bus } from '@custodian/platform';
import { pollUntil } from '../support/poll';
import { inProcessTransport, natsTransport, type Transport } from '../support/transports';

/**
 * One contract suite, two transports: everything a service relies on from the bus must behave
 * the same on the in-process bus (all-in-one) and on NATS (distributed).
 */

const Echo = defineRequest({
  subject: 'test.echo',
  service: 'identity',
  request: Type.Object({ text: Type.String({ maxLength: 100 }) }, { additionalProperties: false }),
  response: Type.Object({ text: Type.String(), requestId: Type.String(), replica: Type.String() }, { additionalProperties: false }),
  timeoutMs: 2000,
});
const Slow = defineRequest({
  subject: 'test.slow',
  service: 'objects',
  request: Type.Object({}),
  response: Type.Object({}),
  timeoutMs: 150,
});
const Lying = defineRequest({
  subject: 'test.lying',
  service: 'objects',
  request: Type.Object({}),
  response: Type.Object({ n: Type.Integer() }),
});
const Refusing = defineRequest({ subject: 'test.refusing', service: 'objects', request: Type.Object({}), response: Type.Object({}) });
const Crashing = defineRequest({ subject: 'test.crashing', service: 'objects', request: Type.Object({}), response: Type.Object({}) });
const Nobody = defineRequest({
  subject: 'test.nobody',
  service: 'audit',
  request: Type.Object({}),
  response: Type.Object({}),
  timeoutMs: 500,
});
const Gated = defineRequest({
  subject: 'test.gated',
  service: 'approvals',
  request: Type.Object({}),
  response: Type.Object({ done: Type.Boolean() }),
});
const Thing = defineEvent({ subject: 'evt.test.thing', payload: Type.Object({ n: Type.Integer() }, { additionalProperties: false }) });

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe.each([
  ['in-process', inProcessTransport],
  ['nats', () => natsTransport('contract-test')],
])('bus contract on %s', (_name, makeTransport) => {
  let transport: Transport;
  let responder: Bus;
  let caller: Bus;
  const gate = { started: false, release: deferred() };

  beforeAll(async () => {
    transport = makeTransport();
    responder = await transport.open();
    caller = await transport.open();
    await responder.handle(Echo, async (req, meta) => ({ text: req.text, requestId: meta.requestId, replica: 'a' }));
    await responder.handle(Slow, () => new Promise((resolve) => setTimeout(() => resolve({}), 400))); // answers, but too late
    await responder.handle(Lying, async () => ({ n: 'not a number' }) as unknown as { n: number });
    await responder.handle(Refusing, async () => {
      throw new CustodianException(ErrorCode.Conflict, 'already decided', { approvalId: 'a1' });
    });
    await responder.handle(Crashing, async () => {
      throw new Error('connection string postgres://admin:hunter2@db');
    });
    await responder.handle(Gated, async () => {
      gate.started = true;
      await gate.release.promise;
      return { done: true };
    });
  });

  afterAll(async () => {
    await transport.close();
  });

  it('answers a request and carries the request id across', async () => {
    const reply = await requestContext.run({ requestId: 'req-contract-1' }, () => caller.request(Echo, { text: 'hello' }));
    expect(reply).toEqual({ text: 'hello', requestId: 'req-contract-1', replica: 'a' });
  });

  it('refuses to send a payload that breaks the contract, before anything is sent', async () => {
    await expect(caller.request(Echo, { text: 'x'.repeat(101) })).rejects.toMatchObject({ code: ErrorCode.InvalidMessage });
    await expect(caller.request(Echo, { text: 'ok', extra: 1 } as unknown as { text: string })).rejects.toMatchObject({
      code: ErrorCode.InvalidMessage,
    });
  });

  it('passes a typed error through with its code and details', async () => {
    const error = await caller.request(Refusing, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CustodianException);
    expect(error).toMatchObject({ code: ErrorCode.Conflict, message: 'already decided', details: { approvalId: 'a1' } });
  });

  it('turns an unknown error into a generic internal error without its text', async () => {
    const error = (await caller.request(Crashing, {}).catch((e: unknown) => e)) as CustodianException;
    expect(error.code).toBe(ErrorCode.Internal);
    expect(JSON.stringify({ m: error.message, d: error.details })).not.toContain('hunter2');
  });

  it('rejects a reply that breaks the contract', async () => {
    await expect(caller.request(Lying, {})).rejects.toMatchObject({ code: ErrorCode.InvalidMessage });
  });

  it('times out a request nobody answers in time', async () => {
    const started = Date.now();
    await expect(caller.request(Slow, {})).rejects.toMatchObject({ code: ErrorCode.BusTimeout });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('says so when no service answers a subject', async () => {
    await expect(caller.request(Nobody, {})).rejects.toMatchObject({ code: ErrorCode.BusNoResponders });
  });

  it('shares requests between replicas of a service, each handled once', async () => {
    const replica = await transport.open();
    const Shared = defineRequest({
      subject: 'test.shared',
      service: 'objects',
      request: Type.Object({ i: Type.Integer() }),
      response: Type.Object({ by: Type.String() }),
    });
    const seen: Record<string, number[]> = { a: [], b: [] };
    await responder.handle(Shared, async ({ i }) => (seen.a.push(i), { by: 'a' }));
    await replica.handle(Shared, async ({ i }) => (seen.b.push(i), { by: 'b' }));
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => caller.request(Shared, { i })));
    expect(replies).toHaveLength(40);
    expect([...seen.a, ...seen.b].sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(seen.a.length).toBeGreaterThan(0);
    expect(seen.b.length).toBeGreaterThan(0);
  });

  it('delivers each event once per durable consumer, absorbing republishes of the same message id', async () => {
    const got: Array<{ n: number; id: string }> = [];
    await caller.publish(Thing, { n: 1 }, { messageId: 'm-1' }); // before the consumer exists
    await responder.subscribe(Thing, 'contract-thing', async (payload, meta) => {
      got.push({ n: payload.n, id: meta.messageId });
    });
    await caller.publish(Thing, { n: 2 }, { messageId: 'm-2' });
    await caller.publish(Thing, { n: 2 }, { messageId: 'm-2' });
    await caller.publish(Thing, { n: 3 }, { messageId: 'm-3' });
    await pollUntil(() => got.length >= 3, { what: 'three events' });
    await caller.publish(Thing, { n: 4 }, { messageId: 'm-4' });
    await pollUntil(() => got.some((g) => g.n === 4), { what: 'the fourth event' });
    expect(got.map((g) => g.id)).toEqual(['m-1', 'm-2', 'm-3', 'm-4']);
  });

  it('refuses to publish an event that breaks its contract', async () => {
    await expect(caller.publish(Thing, { n: 'x' } as unknown as { n: number }, { messageId: 'bad' })).rejects.toMatchObject({
      code: ErrorCode.InvalidMessage,
    });
  });

  it('redelivers an event whose handler failed', async () => {
    const Retry = defineEvent({ subject: 'evt.test.retry', payload: Type.Object({ n: Type.Integer() }) });
    const deliveries: number[] = [];
    await responder.subscribe(Retry, 'contract-retry', async (_p, meta) => {
      deliveries.push(meta.deliveryCount);
      if (deliveries.length === 1) throw new Error('transient');
    });
    await caller.publish(Retry, { n: 1 }, { messageId: 'r-1' });
    await pollUntil(() => deliveries.length >= 2, { what: 'redelivery' });
    expect(deliveries.slice(0, 2)).toEqual([1, 2]);
  });

  // A republish of the same message id may be broadcast again on NATS (de-duplication is the
  // stream's): listeners are idempotent, so it is not asserted either way.
  it('broadcasts an event to every listening process (fan-out), alongside its durable consumers', async () => {
    const Cast = defineEvent({ subject: 'evt.test.cast', payload: Type.Object({ n: Type.Integer() }, { additionalProperties: false }) });
    const seenByResponder: number[] = [];
    const seenByCaller: number[] = [];
    const durable: number[] = [];
    await responder.listen(Cast, (p) => seenByResponder.push(p.n));
    await caller.listen(Cast, (p) => {
      seenByCaller.push(p.n);
      throw new Error('a failing listener is logged, not fatal');
    });
    await responder.subscribe(Cast, 'contract-cast', async (p) => void durable.push(p.n));
    for (let n = 1; n <= 3; n++) await caller.publish(Cast, { n }, { messageId: `cast-${n}` });
    await pollUntil(() => seenByResponder.length >= 3 && seenByCaller.length >= 3 && durable.length >= 3, { what: 'broadcast' });
    await caller.publish(Cast, { n: 9 }, { messageId: 'cast-9' });
    await pollUntil(() => seenByResponder.includes(9), { what: 'later broadcast' });
    expect(seenByResponder).toEqual([1, 2, 3, 9]);
    expect(seenByCaller).toEqual([1, 2, 3, 9]);
  });

  it('lets an in-flight request finish when the responder drains', async () => {
    const pending = caller.request(Gated, {}, { timeoutMs: 5000 });
    await pollUntil(() => gate.started, { what: 'handler start' });
    const draining = responder.drain();
    gate.release.resolve();
    await expect(pending).resolves.toEqual({ done: true });
    await draining;
    expect(responder.isReady()).toBe(false);
  });
});
