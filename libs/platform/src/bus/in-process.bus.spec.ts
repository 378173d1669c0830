import { Type } from '@sinclair/typebox';
import { defineEvent } from '@custodian/contracts';
import pino from 'pino';
import { pollUntil } from '../../../../test/support/poll';
import { InProcessBus } from './in-process.bus';

const Tick = defineEvent({ subject: 'evt.test.tick', payload: Type.Object({ n: Type.Integer() }, { additionalProperties: false }) });
const Other = defineEvent({ subject: 'evt.test.other', payload: Type.Object({ n: Type.Integer() }, { additionalProperties: false }) });
const logger = pino({ level: 'silent' });

/** A handler whose deliveries wait until the test releases them, one by one, in any order. */
function gatedHandler(): {
  handler: (p: { n: number }) => Promise<void>;
  running: Set<number>;
  started: number[];
  finished: number[];
  maxRunning: () => number;
  release: (n: number) => void;
} {
  const gates = new Map<number, () => void>();
  const running = new Set<number>();
  const started: number[] = [];
  const finished: number[] = [];
  let max = 0;
  return {
    running,
    started,
    finished,
    maxRunning: () => max,
    handler: (p) =>
      new Promise<void>((resolve) => {
        started.push(p.n);
        running.add(p.n);
        max = Math.max(max, running.size);
        gates.set(p.n, () => {
          running.delete(p.n);
          finished.push(p.n);
          resolve();
        });
      }),
    release: (n) => gates.get(n)!(),
  };
}

describe('in-process bus: durable consumers', () => {
  let bus: InProcessBus;

  beforeEach(() => {
    bus = new InProcessBus(logger, { retryBaseMs: 1 });
  });

  afterEach(async () => {
    await bus.drain();
  });

  it('hands events over one at a time, in order, by default', async () => {
    const h = gatedHandler();
    await bus.subscribe(Tick, 'ticks', h.handler);
    for (let n = 1; n <= 3; n++) await bus.publish(Tick, { n }, { messageId: `t-${n}` });
    for (let n = 1; n <= 3; n++) {
      await pollUntil(() => h.running.has(n), { what: `delivery ${n}` });
      expect(h.running.size).toBe(1);
      h.release(n);
    }
    await pollUntil(() => h.finished.length === 3, { what: 'all deliveries' });
    expect(h.started).toEqual([1, 2, 3]);
    expect(h.maxRunning()).toBe(1);
  });

  it('runs up to `concurrency` deliveries at once, in stream order, each once', async () => {
    const h = gatedHandler();
    await bus.subscribe(Tick, 'ticks', h.handler, { concurrency: 3 });
    for (let n = 1; n <= 5; n++) await bus.publish(Tick, { n }, { messageId: `t-${n}` });
    await bus.publish(Other, { n: 99 }, { messageId: 'o-99' });
    await pollUntil(() => h.running.size === 3, { what: 'three deliveries at once' });
    expect(h.started).toEqual([1, 2, 3]);
    // A finished delivery frees a slot for the next event; the others keep running.
    h.release(2);
    await pollUntil(() => h.running.has(4), { what: 'the fourth delivery' });
    expect([...h.running].sort()).toEqual([1, 3, 4]);
    for (const n of [4, 1, 3]) h.release(n);
    await pollUntil(() => h.running.has(5), { what: 'the fifth delivery' });
    h.release(5);
    await pollUntil(() => h.finished.length === 5, { what: 'all deliveries' });
    expect(h.started).toEqual([1, 2, 3, 4, 5]);
    expect(h.maxRunning()).toBe(3);
  });

  it('counts an event consumed when its own delivery finished, even before an earlier one', async () => {
    const h = gatedHandler();
    await bus.subscribe(Tick, 'ticks', h.handler, { concurrency: 2 });
    await bus.publish(Tick, { n: 1 }, { messageId: 'first' });
    await bus.publish(Tick, { n: 2 }, { messageId: 'second' });
    await pollUntil(() => h.running.size === 2, { what: 'both deliveries' });
    const first = bus.whenConsumed('first', 10_000);
    let firstDone = false;
    void first.then(() => (firstDone = true));
    h.release(2);
    await expect(bus.whenConsumed('second', 10_000)).resolves.toBe(true);
    expect(firstDone).toBe(false);
    h.release(1);
    await expect(first).resolves.toBe(true);
  });

  it('redelivers a failed delivery while later events go on, and counts it consumed only when it succeeds', async () => {
    const attempts = new Map<number, number>();
    const handled: number[] = [];
    await bus.subscribe(
      Tick,
      'ticks',
      async (p) => {
        const attempt = (attempts.get(p.n) ?? 0) + 1;
        attempts.set(p.n, attempt);
        if (p.n === 1 && attempt < 3) throw new Error('transient');
        handled.push(p.n);
      },
      { concurrency: 4 },
    );
    for (let n = 1; n <= 4; n++) await bus.publish(Tick, { n }, { messageId: `t-${n}` });
    await expect(bus.whenConsumed('t-1', 10_000)).resolves.toBe(true);
    await pollUntil(() => handled.length === 4, { what: 'all events' });
    expect(attempts.get(1)).toBe(3);
    // The later events did not wait for the first one's retries.
    expect(handled).toEqual([2, 3, 4, 1]);
    expect([2, 3, 4].map((n) => attempts.get(n))).toEqual([1, 1, 1]);
  });
});
