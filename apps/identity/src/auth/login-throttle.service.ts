import { Inject, Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { IdentityEvents } from '../events/identity-events.service';

/** Failures in this window count towards a lock; the counter restarts after a quiet window. */
const WINDOW_SECONDS = 15 * 60;
/** Failed attempts per account (any IP) before exponential lockout starts (password guessing). */
export const ACCOUNT_THRESHOLD = 5;
/** Failed attempts per client IP (any account) before lockout (password spraying). */
export const IP_THRESHOLD = 30;
const MAX_LOCK_SECONDS = 15 * 60;

export interface ThrottleKeys {
  account: string;
  ip: string | undefined;
}

/**
 * Brute-force and spraying protection (I9), shared by every identity replica through the
 * database. Counters are keyed by keyed hashes of the email and the IP, never stored in clear, and
 * an unknown email is counted exactly like a known one (no existence oracle).
 */
@Injectable()
export class LoginThrottleService {
  constructor(@Inject(IdentityEvents) private readonly events: IdentityEvents) {}

  /** Seconds until the caller may try again, or 0. */
  async retryAfter(keys: ThrottleKeys): Promise<number> {
    const ids = [keys.account, ...(keys.ip ? [keys.ip] : [])];
    const rows: Array<{ wait: number | null }> = await this.events.read((m) =>
      m.query(
        'SELECT ceil(extract(epoch FROM max(locked_until) - now()))::int AS wait FROM login_throttle WHERE key = ANY($1) AND locked_until > now()',
        [ids],
      ),
    );
    return Math.max(0, rows[0]?.wait ?? 0);
  }

  /** Counts a failure against the account and the IP inside the caller's transaction. */
  async recordFailure(m: EntityManager, keys: ThrottleKeys): Promise<void> {
    await this.bump(m, keys.account, ACCOUNT_THRESHOLD);
    if (keys.ip) await this.bump(m, keys.ip, IP_THRESHOLD);
  }

  /** A successful login clears the account's counter (not the IP's: a sprayer may know one password). */
  async recordSuccess(m: EntityManager, keys: ThrottleKeys): Promise<void> {
    await m.query('DELETE FROM login_throttle WHERE key = $1', [keys.account]);
  }

  private async bump(m: EntityManager, key: string, threshold: number): Promise<void> {
    await m.query(
      `INSERT INTO login_throttle (key, failures, window_started_at, locked_until) VALUES ($1, 1, now(), NULL)
       ON CONFLICT (key) DO UPDATE SET
         failures = CASE WHEN login_throttle.window_started_at < now() - make_interval(secs => $2) THEN 1 ELSE login_throttle.failures + 1 END,
         window_started_at = CASE WHEN login_throttle.window_started_at < now() - make_interval(secs => $2) THEN now() ELSE login_throttle.window_started_at END`,
      [key, WINDOW_SECONDS],
    );
    // From the threshold on, each further failure doubles the lock: 1 s, 2 s, 4 s … up to 15 minutes.
    await m.query(
      `UPDATE login_throttle SET locked_until = now() + make_interval(secs => least($3::float8, power(2, failures - $2)::float8))
        WHERE key = $1 AND failures >= $2`,
      [key, threshold, MAX_LOCK_SECONDS],
    );
  }
}
