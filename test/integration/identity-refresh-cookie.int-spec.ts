import { TEST_ADMIN, startTestHost, type TestHost } from '../support/host';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are asserted field by field
type Json = any;

interface Answer {
  status: number;
  body: Json;
  cookies: string[];
}

const COOKIE = 'custodian_refresh';

/**
 * The browser session of the console: the refresh token in an httpOnly, SameSite=Strict cookie scoped
 * to /api/v1/auth, usable only with the CSRF header from the server's own origin; rotation, reuse and
 * sign-out work as for a refresh token in the body (I6, I7).
 */
describe('identity refresh cookie (browser sessions)', () => {
  let t: TestHost;
  let base: string;
  let origin: string;
  let ip = 0;

  const post = async (path: string, opts: { body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> => {
    const res = await fetch(`${base}/api/v1${path}`, {
      method: 'POST',
      headers: {
        ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
        'x-forwarded-for': `198.51.100.${++ip % 250}`,
        ...opts.headers,
      },
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, cookies: res.headers.getSetCookie() };
  };
  /** The headers a same-origin fetch of the console sends. */
  const browser = (cookie?: string): Record<string, string> => ({
    'x-custodian-csrf': '1',
    origin,
    ...(cookie ? { cookie: `${COOKIE}=${cookie}` } : {}),
  });
  const cookieValue = (answer: Answer): string => {
    const line = answer.cookies.find((c) => c.startsWith(`${COOKIE}=`));
    if (!line) throw new Error(`no ${COOKIE} cookie in ${JSON.stringify(answer.cookies)}`);
    return line.slice(COOKIE.length + 1).split(';')[0]!;
  };
  const cookieLogin = async (extra: Record<string, string> = {}): Promise<Answer> =>
    post('/auth/login', { body: { ...TEST_ADMIN, session: 'cookie' }, headers: { ...browser(), ...extra } });

  beforeAll(async () => {
    // Strict rotation: any second use of a refresh token is reuse (the grace window has its own suite).
    t = await startTestHost('idcookie', { CUSTODIAN_REFRESH_REUSE_GRACE: '0' });
    base = t.host.url;
    origin = new URL(base).origin;
  });

  afterAll(async () => {
    await t?.stop();
  });

  it('a cookie login sets an httpOnly, SameSite=Strict cookie scoped to /api/v1/auth and keeps the refresh token out of the body', async () => {
    const res = await cookieLogin();
    expect(res.status).toBe(200);
    expect(res.body.accessToken).toEqual(expect.any(String));
    expect(res.body).not.toHaveProperty('refreshToken');
    expect(res.cookies).toHaveLength(1);
    const attributes = res.cookies[0]!.split(';').map((a) => a.trim().toLowerCase());
    expect(cookieValue(res)).toMatch(/^crt_/);
    expect(attributes).toEqual(expect.arrayContaining(['path=/api/v1/auth', 'httponly', 'samesite=strict']));
    expect(attributes).toContainEqual(expect.stringMatching(/^max-age=\d+$/));
    // Plain http on loopback: no Secure flag, or the browser would drop the cookie.
    expect(attributes).not.toContain('secure');
  });

  it('is Secure when the request came over https (X-Forwarded-Proto from a trusted proxy)', async () => {
    const res = await cookieLogin({ 'x-forwarded-proto': 'https', origin: origin.replace('http:', 'https:') });
    expect(res.status).toBe(200);
    expect(res.cookies[0]!.split(';').map((a) => a.trim().toLowerCase())).toContain('secure');
  });

  it('a login without session=cookie is unchanged: refresh token in the body, no cookie', async () => {
    const res = await post('/auth/login', { body: TEST_ADMIN });
    expect(res.status).toBe(200);
    expect(res.body.refreshToken).toMatch(/^crt_/);
    expect(res.cookies).toEqual([]);
  });

  it('a cookie login needs the CSRF header and the server’s own origin', async () => {
    const noHeader = await post('/auth/login', { body: { ...TEST_ADMIN, session: 'cookie' }, headers: { origin } });
    expect(noHeader.status).toBe(403);
    expect(noHeader.body.code).toBe('forbidden');
    expect(noHeader.cookies).toEqual([]);
    const foreign = await cookieLogin({ origin: 'https://evil.example' });
    expect(foreign.status).toBe(403);
    expect(foreign.cookies).toEqual([]);
  });

  it('refresh with the cookie rotates it; the old cookie is then reuse and revokes the whole family', async () => {
    const first = cookieValue(await cookieLogin());
    const second = await post('/auth/refresh', { headers: browser(first) });
    expect(second.status).toBe(200);
    expect(second.body.accessToken).toEqual(expect.any(String));
    expect(second.body).not.toHaveProperty('refreshToken');
    const next = cookieValue(second);
    expect(next).not.toBe(first);
    const me = await fetch(`${base}/api/v1/auth/me`, { headers: { authorization: `Bearer ${second.body.accessToken}` } });
    expect(me.status).toBe(200);

    const reused = await post('/auth/refresh', { headers: browser(first) });
    expect(reused.status).toBe(401);
    expect(reused.body.code).toBe('unauthenticated');
    // The refused cookie is cleared in the browser.
    expect(reused.cookies).toContainEqual(expect.stringMatching(new RegExp(`^${COOKIE}=;.*Max-Age=0`, 'i')));
    // Reuse revoked the family: the successor is dead too.
    expect((await post('/auth/refresh', { headers: browser(next) })).status).toBe(401);
  });

  it('refresh from the cookie is refused without the CSRF header, from another origin, without an origin, or cross-site', async () => {
    const token = cookieValue(await cookieLogin());
    const attempts: Array<Record<string, string>> = [
      { cookie: `${COOKIE}=${token}`, origin },
      { ...browser(token), origin: 'https://evil.example' },
      { ...browser(token), origin: 'null' },
      { 'x-custodian-csrf': '1', cookie: `${COOKIE}=${token}` },
      { ...browser(token), 'sec-fetch-site': 'cross-site' },
    ];
    for (const headers of attempts) {
      const res = await post('/auth/refresh', { headers });
      expect({ headers, status: res.status, code: res.body?.code }).toEqual({ headers, status: 403, code: 'forbidden' });
      expect(res.cookies).toEqual([]);
    }
    // None of the refusals spent the token.
    expect((await post('/auth/refresh', { headers: browser(token) })).status).toBe(200);
  });

  it('refresh without a cookie or a body token is 401 problem+json', async () => {
    const res = await post('/auth/refresh', { headers: browser() });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('unauthenticated');
  });

  it('sign-out clears the cookie and revokes the session; the cookie is refused afterwards', async () => {
    const login = await cookieLogin();
    const token = cookieValue(login);
    const out = await post('/auth/logout', {
      headers: { ...browser(token), authorization: `Bearer ${login.body.accessToken}` },
    });
    expect(out.status).toBe(204);
    const cleared = out.cookies.find((c) => c.startsWith(`${COOKIE}=`));
    expect(cleared).toMatch(/Max-Age=0/i);
    expect(cleared).toMatch(/Path=\/api\/v1\/auth/i);
    const me = await fetch(`${base}/api/v1/auth/me`, { headers: { authorization: `Bearer ${login.body.accessToken}` } });
    expect(me.status).toBe(401);
    const after = await post('/auth/refresh', { headers: browser(token) });
    expect(after.status).toBe(401);
  });

  it('a revoked session’s cookie is refused (logout-all from another session)', async () => {
    const token = cookieValue(await cookieLogin());
    const other = await post('/auth/login', { body: TEST_ADMIN });
    const all = await fetch(`${base}/api/v1/auth/logout-all`, {
      method: 'POST',
      headers: { authorization: `Bearer ${other.body.accessToken}` },
    });
    expect(all.status).toBe(200);
    const res = await post('/auth/refresh', { headers: browser(token) });
    expect(res.status).toBe(401);
  });
});
