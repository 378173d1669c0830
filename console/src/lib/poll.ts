import { backoffCeilingMs } from '../../../libs/platform/src/backoff';

export interface PollOptions {
  intervalMs: number;
  /** After failures the wait grows (doubling, jittered) up to this, so a server in trouble is not hammered. */
  maxIntervalMs: number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  /** Uniform in [0, 1); Math.random by default. */
  random?: () => number;
}

/**
 * Runs `tick` again and again, one at a time (never overlapping), waiting `intervalMs` between
 * runs and backing off on errors. Answers a function that stops it; a tick in flight is allowed to
 * finish but schedules nothing more.
 *
 * After n failures in a row the wait is uniformly random between `intervalMs` and
 * min(`maxIntervalMs`, `intervalMs` · 2^n) (the platform's backoff ceiling): the jitter keeps many
 * open consoles from coming back to a recovering server in lockstep, and the floor keeps any of them
 * from asking again sooner than a healthy poll would.
 */
export function startPolling(tick: () => Promise<void>, opts: PollOptions): () => void {
  const setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
  const clearTimer = opts.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  const random = opts.random ?? Math.random;
  let stopped = false;
  let failures = 0;
  let handle: unknown;
  const waitMs = (): number => {
    if (failures === 0) return opts.intervalMs;
    const ceiling = Math.max(opts.intervalMs, backoffCeilingMs({ baseMs: opts.intervalMs, capMs: opts.maxIntervalMs }, failures));
    return opts.intervalMs + Math.min(ceiling - opts.intervalMs, Math.floor(random() * (ceiling - opts.intervalMs + 1)));
  };
  const run = async (): Promise<void> => {
    try {
      await tick();
      failures = 0;
    } catch {
      failures++;
    }
    if (!stopped) handle = setTimer(run, waitMs());
  };
  handle = setTimer(run, opts.intervalMs);
  return () => {
    stopped = true;
    clearTimer(handle);
  };
}
