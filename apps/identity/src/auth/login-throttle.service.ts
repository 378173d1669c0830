import { Inject, Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { IdentityEvents } from '../events/identity-events.service';
import { SessionService } from './session.service';

/** Failures in this window count towards a lock; the counter restarts after a quiet window. */
const WINDOW_SECONDS = 15 * 60;
/** Failed attempts per account (any IP) before exponential lockout starts (password guessing). */
export const ACCOUNT_THRESHOLD = 5;
/** Failed attempts per client IP (any account) before lockout (password spraying). */
export const IP_THRESHOLD = 30;
/** Failed attempts per account from one client IP before that pair is locked (even a known IP). */
export const PAIR_THRESHOLD = 5;
const MAX_LOCK_SECONDS = 15 * 60;
/** An IP that proved the account's password is trusted past the account lock for this long after its last success. */
const KNOWN_IP_SECONDS = 30 * 86_400;

export interface ThrottleKeys {
  account: string;
  ip: string | undefined;
  /** The account as seen from this IP: its own counter, and the record of its successes. */
  pair?: { failures: string; known: string };
}

/**
 * Brute-force and spraying protection (I9), shared by every identity replica through the
 * database. Counters are keyed by keyed hashes of the email and the IP, never stored in clear, and
 * an unknown email is counted exactly like a known one (no existence oracle).
 *
 * Three counters lock with exponential backoff: the account (any IP), the IP (any account) and the
 * account-from-this-IP pair. The account lock stops distributed guessing, but it does not apply to
 * an IP that has proved the account's password before (within 30 days): attackers elsewhere cannot
 * lock the owner out of the places they sign in from. Such an IP still has its pair and IP limits.
 */
@Injectable()
export class LoginThrottleService {
  constructor(
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(SessionService) private readonly sessions: SessionService,
  ) {}

  /** The counters a password attempt for `email` from `ip` is charged to. */
  keysFor(email: string, ip: string | undefined): ThrottleKeys {
    const normalized = email.trim().toLowerCase();
    return {
      account: `acct:${this.sessions.keyedHash(`email:${normalized}`)}`,
      ip: ip ? `ip:${this.sessions.keyedHash(`ip:${ip}`)}` : undefined,
      ...(ip
        ? {
            pair: {
              failures: `pair:${this.sessions.keyedHash(`pair:${normalized}|${ip}`)}`,
              known: `known:${this.sessions.keyedHash(`known:${normalized}|${ip}`)}`,
            },
          }
        : {}),
    };
  }

  /** Seconds until the caller may try again, or 0. */
  async retryAfter(keys: ThrottleKeys): Promise<number> {
    const always = [...(keys.ip ? [keys.ip] : []), ...(keys.pair ? [keys.pair.failures] : [])];
    const rows: Array<{ wait: number | null }> = await this.events.read((m) =>
      m.query(
        `SELECT ceil(extract(epoch FROM max(locked_until) - now()))::int AS wait FROM login_throttle
          WHERE locked_until > now()
            AND (key = ANY($1::text[])
              OR (key = $2 AND NOT EXISTS (
                SELECT 1 FROM login_throttle k WHERE k.key = $3 AND k.window_started_at > now() - make_interval(secs => $4))))`,
        [always, keys.account, keys.pair?.known ?? null, KNOWN_IP_SECONDS],
      ),
    );
    return Math.max(0, rows[0]?.wait ?? 0);
  }

  /** Counts a failure against the account, the IP and the pair inside the caller's transaction. */
  async recordFailure(m: EntityManager, keys: ThrottleKeys): Promise<void> {
    await this.bump(m, keys.account, ACCOUNT_THRESHOLD);
    if (keys.ip) await this.bump(m, keys.ip, IP_THRESHOLD);
    if (keys.pair) await this.bump(m, keys.pair.failures, PAIR_THRESHOLD);
  }

  /**
   * A proven password clears the pair's counter and marks the IP as known for the account. The
   * account counter is cleared only below its threshold (the owner's own typos): a lock set by
   * guessing elsewhere stays for everyone else. The IP counter stays (a sprayer may know one password).
   */
  async recordSuccess(m: EntityManager, keys: ThrottleKeys): Promise<void> {
    await m.query('DELETE FROM login_throttle WHERE key = $1 AND failures < $2', [keys.account, ACCOUNT_THRESHOLD]);
    if (!keys.pair) return;
    await m.query('DELETE FROM login_throttle WHERE key = $1', [keys.pair.failures]);
    await m.query(
      `INSERT INTO login_throttle (key, failures, window_started_at, locked_until) VALUES ($1, 0, now(), NULL)
       ON CONFLICT (key) DO UPDATE SET window_started_at = now()`,
      [keys.pair.known],
    );
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
