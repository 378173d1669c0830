import type { Client } from 'pg';
import { pollUntil } from '../support/poll';
import { startTestHostWithDb, type TestHost } from '../support/host';
import { pinLoginLocks } from '../support/login-throttle';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are asserted field by field
type Json = any;

const PASSWORD = 'a-long-enough-password';
/** The suite runs with a refresh reuse grace of 30 s (not the default 10 s), to prove the setting is read. */
const GRACE_SECONDS = 30;

/**
 * Token and session hardening over HTTP on real PostgreSQL: password-change throttling, lockout
 * that attackers on other IPs cannot turn against the account owner, no-store on every response
 * carrying a credential, a case-insensitive bearer scheme, and the refresh reuse grace window.
 */
describe('identity hardening', () => {
  let t: TestHost;
  let base: string;
  let pg: Client;
  let admin: string;
  let ipCounter = 0;

  const call = async (
    method: string,
    path: string,
    opts: { token?: string; body?: unknown; ip?: string; scheme?: string } = {},
  ): Promise<{ status: number; body: Json; headers: Headers }> => {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: {
        ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(opts.token ? { authorization: `${opts.scheme ?? 'Bearer'} ${opts.token}` } : {}),
        'x-forwarded-for': opts.ip ?? `198.18.0.${++ipCounter % 250}`,
      },
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  };
  const createUser = async (email: string): Promise<string> => {
    const res = await call('POST', '/users', { token: admin, body: { email, displayName: email.split('@')[0], password: PASSWORD } });
    expect(res.status).toBe(201);
    return res.body.id;
  };
  const signIn = async (email: string, ip?: string): Promise<Json> => {
    const res = await call('POST', '/auth/login', { body: { email, password: PASSWORD }, ip });
    expect(res.status).toBe(200);
    return res.body;
  };
  const refresh = (refreshToken: string) => call('POST', '/auth/refresh', { body: { refreshToken } });
  const audited = async (action: string, userId: string): Promise<Json[]> =>
    (
      await pg.query(`SELECT event FROM audit.audit_event WHERE action = $1 AND event::text LIKE $2 ORDER BY received_at`, [
        action,
        `%${userId}%`,
      ])
    ).rows.map((r) => r.event);

  beforeAll(async () => {
    ({ t, base, pg, admin } = await startTestHostWithDb('idhard', { CUSTODIAN_REFRESH_REUSE_GRACE: String(GRACE_SECONDS) }));
  });

  afterAll(async () => {
    await pg?.end();
    await t?.stop();
  });

  describe('password change throttling', () => {
    it('locks after repeated wrong current passwords, also for the right one, and audits the lock', async () => {
      const userId = await createUser('pwguess@test.local');
      const ip = '198.19.1.1';
      const session = await signIn('pwguess@test.local', ip);
      const change = (currentPassword: string, from = ip) =>
        call('POST', '/auth/password', {
          token: session.accessToken,
          body: { currentPassword, newPassword: 'another-long-password' },
          ip: from,
        });
      const guessingStarted = (await pg.query('SELECT now() AS t')).rows[0].t as Date;
      for (let i = 0; i < 5; i++) expect((await change(`wrong-password-${i}`)).status).toBe(401);
      // The first lock lasts 1 s and may run out on a busy machine before the answers below (once a
      // 204 here changed the password): pin the locks the guesses set (the account's and this IP's
      // pair) for those answers; released, they must still run out by themselves.
      const locks = await pinLoginLocks(pg, guessingStarted);
      expect(locks.count).toBeGreaterThanOrEqual(2);
      const locked = await change('wrong-password-5');
      expect(locked.status).toBe(429);
      expect(locked.body.code).toBe('rate_limited');
      expect(locked.body.retryAfterSeconds ?? locked.body.details?.retryAfterSeconds).toBeGreaterThan(0);
      // The right password does not get through while locked, from this IP or from a fresh one.
      expect((await change(PASSWORD)).status).toBe(429);
      expect((await change(PASSWORD, '198.19.1.2')).status).toBe(429);
      // Guessing on the password-change route also locks the sign-in route for guessers (one secret, one counter).
      expect(
        (await call('POST', '/auth/login', { body: { email: 'pwguess@test.local', password: PASSWORD }, ip: '198.19.1.3' })).status,
      ).toBe(429);
      await pollUntil(async () => (await audited('auth.password_change_locked', userId)).length > 0, { what: 'lock audited' });
      expect((await audited('auth.password_change_failed', userId)).length).toBe(5);
      await locks.release();
      // The lock is temporary: after it, the right current password changes the password.
      await pollUntil(async () => (await change(PASSWORD)).status === 204, { what: 'lock expires', timeoutMs: 8000, intervalMs: 250 });
    });
  });

  describe('lockout cannot be turned against the account owner', () => {
    it('failures from other IPs lock new IPs out, not an IP the owner signed in from', async () => {
      await createUser('boss@test.local');
      const home = '198.19.2.1';
      await signIn('boss@test.local', home);
      // A distributed guesser: 10 IPs × 3 wrong passwords, each IP below its own limits; the account
      // lock soon answers them 429 instead of checking their guesses.
      const attackStarted = (await pg.query('SELECT now() AS t')).rows[0].t as Date;
      const statuses: number[] = [];
      for (let ip = 10; ip < 20; ip++)
        for (let i = 0; i < 3; i++)
          statuses.push(
            (await call('POST', '/auth/login', { body: { email: 'boss@test.local', password: `guess-${ip}-${i}` }, ip: `198.19.2.${ip}` }))
              .status,
          );
      expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(10);
      expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
      // The backoff may be as short as 1 s and may already have run out: pin the lock the attack set (expired
      // or not), so the checks below test who it applies to, not how long it lasts.
      expect((await pinLoginLocks(pg, attackStarted)).count).toBeGreaterThan(0);
      const attempt = (ip: string, password = PASSWORD) =>
        call('POST', '/auth/login', { body: { email: 'boss@test.local', password }, ip });
      // Guessing goes no further: the attackers' IPs and any new IP are locked out of this account...
      expect((await attempt('198.19.2.10')).status).toBe(429);
      expect((await attempt('198.19.2.99')).status).toBe(429);
      // ...while the owner, from an IP that signed in before, still gets in.
      expect((await attempt(home)).status).toBe(200);
      expect((await attempt(home)).status).toBe(200);
      // A success does not clear the attack: new IPs stay locked.
      expect((await attempt('198.19.2.98')).status).toBe(429);
    });

    it('a known IP keeps its own limit, so guessing from the owner\u2019s network is still throttled', async () => {
      await createUser('nat@test.local');
      const office = '198.19.3.1';
      await signIn('nat@test.local', office);
      const attempt = (password: string) => call('POST', '/auth/login', { body: { email: 'nat@test.local', password }, ip: office });
      const guessingStarted = (await pg.query('SELECT now() AS t')).rows[0].t as Date;
      for (let i = 0; i < 5; i++) expect((await attempt(`guess-${i}`)).status).toBe(401);
      // The backoff may be as short as 1 s and may have run out on a busy machine: pin the lock the
      // guesses set, so the check tests that the known IP got one, not how long it lasts.
      expect((await pinLoginLocks(pg, guessingStarted)).count).toBeGreaterThan(0);
      expect((await attempt(PASSWORD)).status).toBe(429);
    });

    it('the per-IP spraying limit still applies to an IP with a good record', async () => {
      await createUser('sprayer@test.local');
      const ip = '198.19.4.1';
      await signIn('sprayer@test.local', ip);
      let last = 0;
      for (let i = 0; i < 31; i++)
        last = (await call('POST', '/auth/login', { body: { email: `sprayed${i}@test.local`, password: 'x-Summer2026!' }, ip })).status;
      expect(last).toBe(429);
      expect((await call('POST', '/auth/login', { body: { email: 'sprayer@test.local', password: PASSWORD }, ip })).status).toBe(429);
    });
  });

  describe('no caching of credentials', () => {
    const noStore = (res: { headers: Headers }) => {
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('pragma')).toBe('no-cache');
    };

    it('login, refresh, token exchange and API key creation answer Cache-Control: no-store, Pragma: no-cache', async () => {
      const signedIn = await call('POST', '/auth/login', { body: { email: 'admin@test.local', password: 'correct-horse-battery-staple' } });
      expect(signedIn.status).toBe(200);
      noStore(signedIn);
      const rotated = await refresh(signedIn.body.refreshToken);
      expect(rotated.status).toBe(200);
      noStore(rotated);
      const exchanged = await call('POST', '/auth/token-exchange', {
        body: {
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: rotated.body.accessToken,
          subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
          scope: 'data:read',
          client_id: 'cache-probe',
          agent_name: 'Cache probe',
        },
      });
      expect(exchanged.status).toBe(200);
      noStore(exchanged);
      const key = await call('POST', '/api-keys', { token: rotated.body.accessToken, body: { name: 'cache-probe' } });
      expect(key.status).toBe(201);
      noStore(key);
    });
  });

  describe('bearer scheme', () => {
    it('is case-insensitive (RFC 6750 via RFC 7235)', async () => {
      for (const scheme of ['bearer', 'BEARER', 'Bearer']) {
        expect((await call('GET', '/auth/me', { token: admin, scheme })).status).toBe(200);
        expect((await call('GET', '/meta/objects', { token: admin, scheme })).status).toBe(200);
      }
      expect((await call('GET', '/auth/me', { token: admin, scheme: 'Basic' })).status).toBe(401);
    });
  });

  describe('refresh reuse grace window', () => {
    it('two racing refreshes of one token both get the same successor; the family stays alive', async () => {
      const userId = await createUser('racer@test.local');
      for (let round = 0; round < 3; round++) {
        const session = await signIn('racer@test.local');
        const [a, b] = await Promise.all([refresh(session.refreshToken), refresh(session.refreshToken)]);
        expect([a.status, b.status]).toEqual([200, 200]);
        expect(a.body.refreshToken).toBe(b.body.refreshToken);
        for (const r of [a, b]) expect((await call('GET', '/auth/me', { token: r.body.accessToken })).status).toBe(200);
        // The winner's successor is not revoked and rotates normally.
        const next = await refresh(a.body.refreshToken);
        expect(next.status).toBe(200);
        expect((await call('GET', '/auth/me', { token: next.body.accessToken })).status).toBe(200);
      }
      expect((await audited('auth.refresh_reused', userId)).length).toBe(0);
      await pollUntil(async () => (await audited('auth.refresh_grace', userId)).length === 3, { what: 'grace audited' });
    });

    it('four concurrent refreshes of one token issue exactly one successor', async () => {
      await createUser('quad@test.local');
      const session = await signIn('quad@test.local');
      const results = await Promise.all(Array.from({ length: 4 }, () => refresh(session.refreshToken)));
      expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
      expect(new Set(results.map((r) => r.body.refreshToken)).size).toBe(1);
      const live = await pg.query(
        `SELECT count(*)::int AS n FROM identity.session s JOIN identity.user_account u ON u.id = s.user_id
          WHERE u.email = 'quad@test.local' AND s.revoked_at IS NULL AND s.rotated_at IS NULL`,
      );
      expect(live.rows[0].n).toBe(1);
    });

    it('within the window, a token whose successor was already used is reuse: the family is revoked', async () => {
      const userId = await createUser('spent@test.local');
      const session = await signIn('spent@test.local');
      const second = await refresh(session.refreshToken);
      const third = await refresh(second.body.refreshToken);
      expect(third.status).toBe(200);
      expect((await refresh(session.refreshToken)).status).toBe(401);
      expect((await refresh(third.body.refreshToken)).status).toBe(401);
      expect((await call('GET', '/auth/me', { token: third.body.accessToken })).status).toBe(401);
      await pollUntil(async () => (await audited('auth.refresh_reused', userId)).length === 1, { what: 'reuse audited' });
    });

    it('the configured window is honoured, and reuse after it revokes the whole family', async () => {
      const userId = await createUser('late@test.local');
      const session = await signIn('late@test.local');
      const second = await refresh(session.refreshToken);
      expect(second.status).toBe(200);
      // Age the rotation instead of sleeping: 20 s ago is inside the configured 30 s (beyond the 10 s default)...
      const age = (seconds: number) =>
        pg.query(
          `UPDATE identity.session SET rotated_at = now() - make_interval(secs => $1)
            WHERE rotated_at IS NOT NULL AND user_id = $2`,
          [seconds, userId],
        );
      await age(GRACE_SECONDS - 10);
      const again = await refresh(session.refreshToken);
      expect(again.status).toBe(200);
      expect(again.body.refreshToken).toBe(second.body.refreshToken);
      // ...31 s ago is outside it: reuse, and the whole family dies.
      await age(GRACE_SECONDS + 1);
      expect((await refresh(session.refreshToken)).status).toBe(401);
      expect((await refresh(second.body.refreshToken)).status).toBe(401);
      expect((await call('GET', '/auth/me', { token: second.body.accessToken })).status).toBe(401);
      await pollUntil(async () => (await audited('auth.refresh_reused', userId)).length === 1, { what: 'reuse audited' });
    });
  });
});
