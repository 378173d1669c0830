import type { Client } from 'pg';

/**
 * Pins the login locks (identity.login_throttle) set since `since` for ten minutes. The first
 * lock lasts 1 s and the next 2 s, which a busy machine can outlast between two requests; a test
 * that checks who a lock applies to pins it, and `release` gives the locks back their own expiry
 * when the test goes on to check that a lock runs out by itself.
 */
export async function pinLoginLocks(pg: Client, since: Date): Promise<{ count: number; release(): Promise<void> }> {
  const locks = (
    await pg.query(`SELECT key, locked_until FROM identity.login_throttle WHERE locked_until IS NOT NULL AND window_started_at >= $1`, [
      since,
    ])
  ).rows as Array<{ key: string; locked_until: Date }>;
  await pg.query(`UPDATE identity.login_throttle SET locked_until = now() + interval '10 minutes' WHERE key = ANY($1::text[])`, [
    locks.map((l) => l.key),
  ]);
  return {
    count: locks.length,
    async release() {
      for (const l of locks) await pg.query('UPDATE identity.login_throttle SET locked_until = $2 WHERE key = $1', [l.key, l.locked_until]);
    },
  };
}
