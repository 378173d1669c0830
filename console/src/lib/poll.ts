export interface PollOptions {
  intervalMs: number;
  /** After failures the wait doubles up to this, so a server in trouble is not hammered. */
  maxIntervalMs: number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

/**
 * Runs `tick` again and again, one at a time (never overlapping), waiting `intervalMs` between
 * runs and backing off on errors. Answers a function that stops it; a tick in flight is allowed to
 * finish but schedules nothing more.
 */
export function startPolling(tick: () => Promise<void>, opts: PollOptions): () => void {
  const setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
  const clearTimer = opts.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  let stopped = false;
  let wait = opts.intervalMs;
  let handle: unknown;
  const run = async (): Promise<void> => {
    try {
      await tick();
      wait = opts.intervalMs;
    } catch {
      wait = Math.min(wait * 2, opts.maxIntervalMs);
    }
    if (!stopped) handle = setTimer(run, wait);
  };
  handle = setTimer(run, wait);
  return () => {
    stopped = true;
    clearTimer(handle);
  };
}
