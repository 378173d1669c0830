import fc from 'fast-check';
import { RETRY_BACKOFF, backoffCeilingMs, backoffDelayMs, retryWithBackoff, type BackoffPolicy } from './backoff';

const policy: BackoffPolicy = { baseMs: 100, capMs: 5000, maxExponent: 6 };

describe('backoff with full jitter', () => {
  it('grows the ceiling exponentially up to the cap and the exponent bound', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 20].map((n) => backoffCeilingMs(policy, n))).toEqual([
      100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000,
    ]);
    expect(backoffCeilingMs({ baseMs: 200, capMs: 1_000_000, maxExponent: 10 }, 50)).toBe(200 * 2 ** 10);
    expect(backoffCeilingMs(policy, -3)).toBe(100);
  });

  it('is deterministic with an injected random: 0 gives 0, just under 1 gives the ceiling', () => {
    expect(backoffDelayMs({ ...policy, random: () => 0 }, 3)).toBe(0);
    expect(backoffDelayMs({ ...policy, random: () => 0.999999999 }, 3)).toBe(800);
    expect(backoffDelayMs({ ...policy, random: () => 0.5 }, 2)).toBe(200);
  });

  it('always answers a whole number of milliseconds within [0, ceiling] (property, fixed seed)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: -2, max: 60 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (baseMs, capMs, maxExponent, n, r) => {
          const p = { baseMs, capMs, maxExponent, random: () => r };
          const d = backoffDelayMs(p, n);
          expect(Number.isInteger(d)).toBe(true);
          expect(d).toBeGreaterThanOrEqual(0);
          expect(d).toBeLessThanOrEqual(backoffCeilingMs(p, n));
          expect(d).toBeLessThanOrEqual(capMs);
        },
      ),
      { seed: 19, numRuns: 500 },
    );
  });

  it('spreads delays over the whole range (not all at the ceiling)', () => {
    let state = 42;
    const random = (): number => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const delays = Array.from({ length: 200 }, () => backoffDelayMs({ ...policy, random }, 4));
    expect(Math.min(...delays)).toBeLessThan(400);
    expect(Math.max(...delays)).toBeGreaterThan(1200);
  });
});

describe('retryWithBackoff', () => {
  const retryable = (e: unknown): boolean => (e as { code?: string }).code === 'retry';
  const failure = (code: string, n: number): Error => Object.assign(new Error(`${code} ${n}`), { code });

  it('tries again after a retryable failure and answers the first success, waiting a jittered delay between tries', async () => {
    const waits: number[] = [];
    let calls = 0;
    const result = await retryWithBackoff(
      async (attempt) => {
        calls++;
        if (attempt < 3) throw failure('retry', attempt);
        return `done on ${attempt}`;
      },
      { attempts: 4, isRetryable: retryable, backoff: { ...policy, random: () => 0.5 }, sleep: async (ms) => void waits.push(ms) },
    );
    expect([result, calls]).toEqual(['done on 3', 3]);
    expect(waits).toEqual([50, 100]); // half of the ceilings 100 and 200: the jitter is applied
  });

  it('gives up after the given number of tries with the last failure', async () => {
    const waits: number[] = [];
    let calls = 0;
    const run = retryWithBackoff(
      async (attempt) => {
        calls++;
        throw failure('retry', attempt);
      },
      { attempts: 4, isRetryable: retryable, backoff: { ...policy, random: () => 0.999 }, sleep: async (ms) => void waits.push(ms) },
    );
    await expect(run).rejects.toThrow('retry 4');
    expect(calls).toBe(4);
    expect(waits).toEqual([100, 200, 400]);
  });

  it('never retries a failure that is not retryable', async () => {
    const sleep = jest.fn(async () => undefined);
    let calls = 0;
    const run = retryWithBackoff(
      async () => {
        calls++;
        throw failure('23505', calls);
      },
      { attempts: 4, isRetryable: retryable, sleep },
    );
    await expect(run).rejects.toThrow('23505 1');
    expect(calls).toBe(1);
    expect(sleep).not.toHaveBeenCalled();
  });

  it('waits within the default transaction backoff, spread over it', async () => {
    const waits: number[] = [];
    for (let i = 0; i < 50; i++)
      await retryWithBackoff(
        async (attempt) => {
          if (attempt < 4) throw failure('retry', attempt);
        },
        { attempts: 4, isRetryable: retryable, sleep: async (ms) => void waits.push(ms) },
      );
    expect(waits.length).toBe(150);
    expect(waits.every((ms) => Number.isInteger(ms) && ms >= 0 && ms <= RETRY_BACKOFF.capMs)).toBe(true);
    expect(new Set(waits).size).toBeGreaterThan(10);
  });
});
