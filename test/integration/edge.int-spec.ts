import http from 'node:http';
import type { Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { Client } from 'pg';
import { ConfigError } from '@custodian/platform';
import { startAllInOne } from '../../all-in-one/all-in-one';
import { TEST_ADMIN, login, startTestHost, type TestHost } from '../support/host';
import { pollUntil } from '../support/poll';

// The edge (issue 19): trusted proxies, the general rate limiter, request deadlines, compression.

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A raw HTTP request (fetch would add and decode Accept-Encoding by itself). */
function request(
  base: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: unknown } = {},
): Promise<Answer> {
  const url = new URL(path, base);
  const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: opts.method ?? 'GET',
        headers: { ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}), ...opts.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const json = (a: Answer): Record<string, unknown> => JSON.parse(a.body.toString('utf8')) as Record<string, unknown>;
/** `"address";r=5;t=1000` → { name: 'address', r: 5, t: 1000 } */
function rateLimit(a: Answer): { name: string; r: number; t: number } | undefined {
  const m = /^"(\w+)";r=(\d+);t=(\d+)$/.exec(String(a.headers.ratelimit ?? ''));
  return m ? { name: m[1], r: Number(m[2]), t: Number(m[3]) } : undefined;
}
const jwks = (base: string, xff?: string, extra: Record<string, string> = {}): Promise<Answer> =>
  request(base, '/.well-known/jwks.json', { headers: { ...(xff ? { 'x-forwarded-for': xff } : {}), ...extra } });
const tryLogin = (base: string, xff: string, password: string): Promise<Answer> =>
  request(base, '/api/v1/auth/login', {
    method: 'POST',
    headers: { 'x-forwarded-for': xff },
    body: { email: TEST_ADMIN.email, password },
  });

/** The client address identity's audit event of the newest login carries (from its outbox). */
async function lastLoginIp(db: string): Promise<string | undefined> {
  const client = new Client({ connectionString: db });
  await client.connect();
  try {
    const { rows } = await client.query<{ ip: string | null }>(
      `SELECT payload->'actor'->>'ip' AS ip FROM identity.outbox WHERE payload->>'action' = 'auth.login' ORDER BY created_at DESC, id DESC LIMIT 1`,
    );
    return rows[0]?.ip ?? undefined;
  } finally {
    await client.end();
  }
}

describe('edge: behind a trusted proxy (loopback)', () => {
  let t: TestHost;
  let base: string;
  beforeAll(async () => {
    t = await startTestHost('edge_proxy', {
      CUSTODIAN_TRUSTED_PROXIES: 'loopback',
      CUSTODIAN_RATE_LIMIT_EXEMPT: '',
      // A token per 1000 s: nothing refills during the test, so counts are exact.
      CUSTODIAN_RATE_LIMIT_ADDRESS_PER_SECOND: '0.001',
      CUSTODIAN_RATE_LIMIT_ADDRESS_BURST: '6',
      CUSTODIAN_RATE_LIMIT_BEARER_PER_SECOND: '0',
    });
    base = t.host.url;
  }, 120_000);
  afterAll(() => t?.stop());

  it('honours X-Forwarded-For through the trusted hop: each client address has its own bucket', async () => {
    expect(rateLimit(await jwks(base, '198.51.100.1'))).toEqual({ name: 'address', r: 5, t: expect.any(Number) });
    expect(rateLimit(await jwks(base, '198.51.100.2'))).toMatchObject({ r: 5 });
    // What a client writes left of the hop the proxy appended is never read.
    expect(rateLimit(await jwks(base, '10.66.66.66, 198.51.100.1'))).toMatchObject({ r: 4 });
    expect(rateLimit(await jwks(base, '198.51.100.1'))).toMatchObject({ r: 3 });
  });

  it('answers 429 problem+json with Retry-After and the RateLimit headers once the bucket is empty; probes are exempt', async () => {
    const ip = '198.51.100.3';
    for (let i = 0; i < 6; i++) expect((await jwks(base, ip)).status).toBe(200);
    const refused = await jwks(base, ip);
    expect(refused.status).toBe(429);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(json(refused)).toMatchObject({ status: 429, code: 'rate_limited', details: { policy: 'address', retryAfterSeconds: 1000 } });
    expect(json(refused).requestId).toBe(refused.headers['x-request-id']);
    expect(refused.headers['retry-after']).toBe('1000');
    expect(refused.headers['ratelimit-policy']).toBe('"address";q=6;w=6000');
    expect(rateLimit(refused)).toEqual({ name: 'address', r: 0, t: 1000 });
    // Every route is limited — an unknown one and an authenticated one alike — but not the probes.
    expect((await request(base, '/api/v1/nothing-here', { headers: { 'x-forwarded-for': ip } })).status).toBe(429);
    const live = await request(base, '/health/live', { headers: { 'x-forwarded-for': ip } });
    expect(live.status).toBe(200);
    expect(live.headers.ratelimit).toBeUndefined();
    expect((await request(base, '/metrics', { headers: { 'x-forwarded-for': ip } })).status).toBe(200);
    // Another client is not affected.
    expect((await jwks(base, '198.51.100.4')).status).toBe(200);
  });

  it('keys an IPv6 client by its /64', async () => {
    for (let i = 1; i <= 6; i++) expect((await jwks(base, `2001:db8:1:2::${i}`)).status).toBe(200);
    expect((await jwks(base, '2001:db8:1:2:ffff:ffff:ffff:ffff')).status).toBe(429);
    expect((await jwks(base, '[2001:db8:1:3::1]:4711')).status).toBe(200);
  });

  it('the login throttle and audit see the forwarded client address', async () => {
    const home = '203.0.113.10';
    const attacker = '203.0.113.66';
    expect((await tryLogin(base, home, TEST_ADMIN.password)).status).toBe(200);
    await pollUntil(async () => (await lastLoginIp(t.db.url)) === home, { what: 'the login event with the forwarded address' });
    for (let i = 0; i < 5; i++) expect((await tryLogin(base, attacker, 'wrong-password-123')).status).toBe(401);
    // The attacker's address is locked for this account even with the right password...
    expect((await tryLogin(base, attacker, TEST_ADMIN.password)).status).toBe(429);
    // ...while the owner's own address, which proved the password before, still signs in.
    expect((await tryLogin(base, home, TEST_ADMIN.password)).status).toBe(200);
  });
});

describe('edge: no trusted proxy', () => {
  let t: TestHost;
  let base: string;
  beforeAll(async () => {
    t = await startTestHost('edge_direct', {
      CUSTODIAN_TRUSTED_PROXIES: '',
      CUSTODIAN_RATE_LIMIT_EXEMPT: '',
      CUSTODIAN_RATE_LIMIT_ADDRESS_PER_SECOND: '0.001',
      CUSTODIAN_RATE_LIMIT_ADDRESS_BURST: '1000',
      CUSTODIAN_RATE_LIMIT_BEARER_PER_SECOND: '0.001',
      CUSTODIAN_RATE_LIMIT_BEARER_BURST: '4',
    });
    base = t.host.url;
  }, 120_000);
  afterAll(() => t?.stop());

  it('ignores a spoofed X-Forwarded-For and Forwarded from an untrusted peer', async () => {
    const first = rateLimit(await jwks(base, '198.51.100.1'))!;
    const second = rateLimit(await jwks(base, '198.51.100.2', { forwarded: 'for=198.51.100.3' }))!;
    expect(second.r).toBe(first.r - 1); // one bucket: the socket's address
    expect((await tryLogin(base, '198.51.100.7', TEST_ADMIN.password)).status).toBe(200);
    await pollUntil(async () => (await lastLoginIp(t.db.url)) === '127.0.0.1', { what: 'the login event with the peer address' });
  });

  it('limits each credential on its own bucket', async () => {
    const a = (await login(base)).accessToken;
    const b = (await login(base)).accessToken;
    const me = (token: string): Promise<Answer> => request(base, '/api/v1/auth/me', { headers: { authorization: `Bearer ${token}` } });
    for (let i = 3; i >= 0; i--) {
      const ok = await me(a);
      expect(ok.status).toBe(200);
      expect(rateLimit(ok)).toMatchObject({ name: 'credential', r: i });
    }
    const refused = await me(a);
    expect(refused.status).toBe(429);
    expect(json(refused)).toMatchObject({ code: 'rate_limited', details: { policy: 'credential' } });
    expect(refused.headers['ratelimit-policy']).toBe('"address";q=1000;w=1000000, "credential";q=4;w=4000');
    expect((await me(b)).status).toBe(200);
    // A forged or guessed credential has a bucket of its own: it cannot drain a real one's.
    expect((await me(`${a.slice(0, -2)}xx`)).status).toBe(401);
  });
});

describe('edge: compression and server timeouts (defaults)', () => {
  let t: TestHost;
  let base: string;
  let token: string;
  beforeAll(async () => {
    t = await startTestHost('edge_gzip', { CUSTODIAN_HTTP_REQUEST_TIMEOUT_MS: '90000', CUSTODIAN_HTTP_HEADERS_TIMEOUT_MS: '15000' });
    base = t.host.url;
    token = (await login(base)).accessToken;
    // Enough roles that the list is well over 1 KiB.
    for (let i = 0; i < 30; i++) {
      const res = await request(base, '/api/v1/roles', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body: { name: `role-${i}-${randomBytes(8).toString('hex')}` },
      });
      expect(res.status).toBe(201);
    }
  }, 120_000);
  afterAll(() => t?.stop());

  it('sets the server request and headers timeouts from the config', () => {
    const server = t.host.app.getHttpServer() as Server;
    expect([server.requestTimeout, server.headersTimeout]).toEqual([90_000, 15_000]);
  });

  it('compresses JSON of 1 KiB or more when the client accepts it, and nothing else', async () => {
    const auth = { authorization: `Bearer ${token}` };
    const plain = await request(base, '/api/v1/roles', { headers: auth });
    expect(plain.status).toBe(200);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.length).toBeGreaterThan(1024);
    const gz = await request(base, '/api/v1/roles', { headers: { ...auth, 'accept-encoding': 'gzip' } });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.headers.vary).toMatch(/accept-encoding/i);
    expect(gz.body.length).toBeLessThan(plain.body.length);
    expect(JSON.parse(gunzipSync(gz.body).toString('utf8'))).toEqual(JSON.parse(plain.body.toString('utf8')));
    // Small answers are not worth it.
    const small = await request(base, '/health/live', { headers: { 'accept-encoding': 'gzip' } });
    expect(small.body.length).toBeLessThan(1024);
    expect(small.headers['content-encoding']).toBeUndefined();
    // Answers that carry tokens are never compressed (BREACH), whatever their size.
    const me = await request(base, '/api/v1/auth/me', { headers: { ...auth, 'accept-encoding': 'gzip' } });
    expect(me.status).toBe(200);
    expect(me.headers['content-encoding']).toBeUndefined();
  });
});

describe('edge: request deadline', () => {
  let t: TestHost;
  let base: string;
  beforeAll(async () => {
    // 1 ms: a password check (argon2id) can never finish in time, a probe is exempt.
    t = await startTestHost('edge_deadline', { CUSTODIAN_HTTP_HANDLER_TIMEOUT_MS: '1' });
    base = t.host.url;
  }, 120_000);
  afterAll(() => t?.stop());

  it('answers 503 request_timeout with Retry-After when the handler is late, and stays healthy', async () => {
    const late = await tryLogin(base, '198.51.100.1', TEST_ADMIN.password);
    expect(late.status).toBe(503);
    expect(late.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(late.headers['retry-after']).toBe('1');
    expect(json(late)).toMatchObject({ code: 'request_timeout', status: 503, details: { timeoutMs: 1 } });
    // The late handler's own answer went nowhere; the next requests are served.
    expect((await request(base, '/health/ready')).status).toBe(200);
    expect((await tryLogin(base, '198.51.100.1', TEST_ADMIN.password)).status).toBe(503);
  });
});

describe('edge: configuration', () => {
  it('refuses to start on a bad trusted-proxy entry, naming it', async () => {
    const start = startAllInOne({ CUSTODIAN_TRUSTED_PROXIES: '10.0.0.0/8, 10.0.0.0/40', LOG_LEVEL: 'silent' });
    await expect(start).rejects.toBeInstanceOf(ConfigError);
    await expect(start).rejects.toThrow(/CUSTODIAN_TRUSTED_PROXIES: "10\.0\.0\.0\/40" is not an IP address, a CIDR/);
  });
});
