/**
 * Exponential backoff with full jitter: the n-th retry waits a uniformly random whole number of
 * milliseconds in [0, min(cap, base * 2^n)]. The jitter spreads retries of many clients that failed
 * together (a database restart, a NATS outage) instead of having them come back in lockstep.
 * `random` is injectable so tests are deterministic.
 */
export interface BackoffPolicy {
  /** The ceiling of the first retry (exponent 0). */
  baseMs: number;
  /** No delay exceeds this. */
  capMs: number;
  /** The exponent stops growing here (keeps 2^n finite for long outages). */
  maxExponent?: number;
  /** Uniform in [0, 1); Math.random by default. */
  random?: () => number;
}

/** The largest delay of retry number `exponent` (0-based): min(cap, base * 2^min(exponent, maxExponent)). */
export function backoffCeilingMs(policy: BackoffPolicy, exponent: number): number {
  const n = Math.max(0, Math.min(policy.maxExponent ?? 30, Math.floor(exponent)));
  return Math.max(0, Math.min(policy.capMs, policy.baseMs * 2 ** n));
}

/** The delay of retry number `exponent`: a whole number of milliseconds in [0, ceiling], full jitter. */
export function backoffDelayMs(policy: BackoffPolicy, exponent: number): number {
  const ceiling = backoffCeilingMs(policy, exponent);
  const r = (policy.random ?? Math.random)();
  return Math.min(ceiling, Math.floor(r * (ceiling + 1)));
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface RetryOptions {
  /** Tries in all, the first included; the last failure is thrown as it is. */
  attempts: number;
  /** Whether a failure may be tried again (e.g. pg-errors' isRetryableTransactionError); others are thrown at once. */
  isRetryable: (error: unknown) => boolean;
  /** The waits between tries; RETRY_BACKOFF by default. */
  backoff?: BackoffPolicy;
  /** Injectable for tests; `sleep` by default. */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Short waits for a transaction that lost a race with a concurrent one (serialization failure,
 * deadlock): at most 10, 20, 40 … ms and never above 100 ms, fully jittered, so the transactions that
 * collided do not run again in lockstep and collide again.
 */
export const RETRY_BACKOFF: BackoffPolicy = { baseMs: 10, capMs: 100 };

/**
 * Runs `fn` until it succeeds, a failure is not retryable, or `attempts` tries failed; between tries
 * it waits `backoffDelayMs(backoff, n)` for the n-th retry (0-based). `fn` gets the try's number (1-based).
 */
export async function retryWithBackoff<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const wait = options.sleep ?? sleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt >= options.attempts || !options.isRetryable(error)) throw error;
      await wait(backoffDelayMs(options.backoff ?? RETRY_BACKOFF, attempt - 1));
    }
  }
}
