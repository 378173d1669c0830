import { CustodianApiError } from '@custodian/client';
import { ApiClient, itemsOf, parseSse } from './client';
import { ApiError, asApiError } from './problem';

interface Call {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: unknown;
  credentials?: RequestCredentials;
  cache?: RequestCache;
}

/** A fake API: answers from a queue and records every request. */
function fakeApi(answers: Array<{ status: number; body?: unknown; headers?: Record<string, string> }>) {
  const calls: Call[] = [];
  const fetchImpl = async (url: string, init?: RequestInit): Promise<Response> => {
    calls.push({
      url,
      method: init?.method ?? 'GET',
      headers: init?.headers as Record<string, string>,
      body: init?.body ? JSON.parse(String(init.body)) : undefined,
      credentials: init?.credentials,
      cache: init?.cache,
    });
    const next = answers.shift();
    if (!next) throw new TypeError('network down');
    return new Response(next.body === undefined ? null : JSON.stringify(next.body), { status: next.status, headers: next.headers });
  };
  return { calls, fetchImpl };
}

const tokens = (n: number, expiresIn = 300) => ({ accessToken: `at${n}`, expiresIn });

describe('ApiClient', () => {
  it('keeps tokens in memory only and sends the access token as a bearer', async () => {
    const { calls, fetchImpl } = fakeApi([
      { status: 200, body: tokens(1) },
      { status: 200, body: { email: 'a@b' } },
    ]);
    const api = new ApiClient({ fetch: fetchImpl });
    await api.login('a@b', 'pw');
    const me = await api.client.authMe();
    expect(me.email).toBe('a@b');
    expect(calls[1]).toMatchObject({ url: '/api/v1/auth/me', method: 'GET' });
    expect(calls[1].headers.authorization).toBe('Bearer at1');
    // The login itself sends no bearer; every request stays same-origin and uncached.
    expect(calls[0].headers.authorization).toBeUndefined();
    expect(calls.every((c) => c.credentials === 'same-origin' && c.cache === 'no-store')).toBe(true);
    // A browser session: the refresh token is set as an httpOnly cookie, never handed to the page.
    expect(calls[0].body).toEqual({ email: 'a@b', password: 'pw', session: 'cookie' });
    expect(calls.every((c) => c.headers['x-custodian-csrf'] === '1')).toBe(true);
    expect(typeof (globalThis as { localStorage?: unknown }).localStorage).toBe('undefined');
  });

  it('rotates the refresh token before the access token expires, once for concurrent requests', async () => {
    let now = 0;
    const { calls, fetchImpl } = fakeApi([
      { status: 200, body: tokens(1, 60) },
      { status: 200, body: tokens(2) },
      { status: 200, body: { n: 1 } },
      { status: 200, body: { n: 2 } },
    ]);
    const api = new ApiClient({ fetch: fetchImpl, now: () => now });
    await api.login('a@b', 'pw');
    now = 45_000; // 15 s left: inside the refresh margin
    await Promise.all([api.client.usersGet({ id: 'x' }), api.client.usersGet({ id: 'y' })]);
    const refreshes = calls.filter((c) => c.url.endsWith('/auth/refresh'));
    expect(refreshes).toHaveLength(1);
    // The credential is the cookie: the body is empty, the CSRF header is there.
    expect(refreshes[0].body).toEqual({});
    expect(refreshes[0].headers['x-custodian-csrf']).toBe('1');
    expect(calls.slice(2).map((c) => c.headers.authorization)).toEqual(['Bearer at2', 'Bearer at2']);
  });

  it('refreshes once and retries once on a 401, then signs out when the refresh is refused', async () => {
    const { calls, fetchImpl } = fakeApi([
      { status: 200, body: tokens(1) },
      { status: 401, body: { code: 'unauthenticated' } },
      { status: 200, body: tokens(2) },
      { status: 200, body: { ok: true } },
      { status: 401, body: { code: 'unauthenticated' } },
      { status: 401, body: { code: 'refresh_reused', requestId: 'r-1' } },
    ]);
    const api = new ApiClient({ fetch: fetchImpl });
    const changes: boolean[] = [];
    api.onChange((s) => changes.push(s));
    await api.login('a@b', 'pw');
    expect(await api.client.usersGet({ id: 'x' })).toEqual({ ok: true });
    // The retry is the same request, now with the refreshed token.
    expect(calls[3]).toMatchObject({ url: '/api/v1/users/x', method: 'GET' });
    expect(calls[1].headers.authorization).toBe('Bearer at1');
    expect(calls[3].headers.authorization).toBe('Bearer at2');
    await expect(api.client.usersGet({ id: 'y' })).rejects.toMatchObject({ code: 'refresh_reused', requestId: 'r-1' });
    // One refresh per 401, never a loop: login, x, refresh, x again, y, refresh.
    expect(calls).toHaveLength(6);
    expect(api.signedIn).toBe(false);
    expect(changes).toEqual([true, false]);
  });

  it('keeps the session when a refresh fails for lack of network', async () => {
    let now = 0;
    const { fetchImpl } = fakeApi([{ status: 200, body: tokens(1, 60) }]);
    const api = new ApiClient({ fetch: fetchImpl, now: () => now });
    await api.login('a@b', 'pw');
    now = 50_000;
    await expect(api.client.usersGet({ id: 'x' })).rejects.toMatchObject({ code: 'network_error' });
    expect(api.signedIn).toBe(true);
  });

  it('turns problem+json into an ApiError with code and request id, and anything else into a stand-in code', async () => {
    const { fetchImpl } = fakeApi([
      { status: 200, body: tokens(1) },
      { status: 412, body: { code: 'precondition_failed', detail: 'version moved', requestId: 'req-9' } },
      { status: 502, headers: { 'x-request-id': 'req-10' } },
    ]);
    const api = new ApiClient({ fetch: fetchImpl });
    await api.login('a@b', 'pw');
    const e1 = await api.client.recordsUpdate({ object: 'x', id: '1', body: {}, headers: { 'if-match': '"3"' } }).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(ApiError);
    expect(e1).toMatchObject({ status: 412, code: 'precondition_failed', requestId: 'req-9', detail: 'version moved' });
    const e2 = await api.client.usersGet({ id: 'y' }).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(ApiError);
    expect(e2).toMatchObject({ status: 502, code: 'http_502', requestId: 'req-10', detail: undefined });
  });

  it('forgets the tokens on sign-out even when the server cannot be reached', async () => {
    const { calls, fetchImpl } = fakeApi([{ status: 200, body: tokens(1) }]);
    const api = new ApiClient({ fetch: fetchImpl });
    await api.login('a@b', 'pw');
    await api.logout();
    expect(api.signedIn).toBe(false);
    expect(calls[1].url).toBe('/api/v1/auth/logout');
    await expect(api.client.authMe()).rejects.toMatchObject({ code: 'not_signed_in' });
    expect(calls).toHaveLength(2);
  });

  it('resumes a session after a reload from the refresh cookie, and stays signed out when it is refused', async () => {
    const { calls, fetchImpl } = fakeApi([
      { status: 200, body: tokens(7) },
      { status: 200, body: { ok: true } },
    ]);
    const api = new ApiClient({ fetch: fetchImpl });
    expect(api.signedIn).toBe(false);
    expect(await api.resume()).toBe(true);
    await api.client.authMe();
    expect(calls[0].url).toBe('/api/v1/auth/refresh');
    expect(calls[1].headers.authorization).toBe('Bearer at7');

    const refused = fakeApi([{ status: 401, body: { code: 'unauthenticated' } }]);
    const fresh = new ApiClient({ fetch: refused.fetchImpl });
    expect(await fresh.resume()).toBe(false);
    expect(fresh.signedIn).toBe(false);
  });

  it('refreshes an expiring access token before signing out, so the server can revoke the session and clear the cookie', async () => {
    let now = 0;
    const { calls, fetchImpl } = fakeApi([{ status: 200, body: tokens(1, 60) }, { status: 200, body: tokens(2) }, { status: 204 }]);
    const api = new ApiClient({ fetch: fetchImpl, now: () => now });
    await api.login('a@b', 'pw');
    now = 50_000;
    await api.logout();
    expect(calls.map((c) => c.url)).toEqual(['/api/v1/auth/login', '/api/v1/auth/refresh', '/api/v1/auth/logout']);
    expect(calls[2].headers.authorization).toBe('Bearer at2');
    expect(api.signedIn).toBe(false);
  });

  it('sends a typed call to the path, query, method, headers and body its operation names, with the CSRF header', async () => {
    const { calls, fetchImpl } = fakeApi([
      { status: 200, body: tokens(1) },
      { status: 200, body: { items: [{ id: 'u1' }], nextCursor: null } },
      { status: 200, body: { id: 'r/1', version: 4 } },
    ]);
    const api = new ApiClient({ fetch: fetchImpl });
    await api.login('a@b', 'pw');
    const users = await api.client.usersList({ query: { limit: '200' } });
    expect(itemsOf<{ id: string }>(users).map((u) => u.id)).toEqual(['u1']);
    await api.client.recordsUpdate({ object: 'deal', id: 'r/1', body: { amount: 5 }, headers: { 'if-match': '"3"' } });
    expect(calls[1]).toMatchObject({ url: '/api/v1/users?limit=200', method: 'GET' });
    // Path parameters are encoded; the body is JSON; the call's own headers go through the hook.
    expect(calls[2]).toMatchObject({ url: '/api/v1/data/deal/r%2F1', method: 'PATCH', body: { amount: 5 } });
    expect(calls[2].headers).toMatchObject({
      'if-match': '"3"',
      'content-type': 'application/json',
      authorization: 'Bearer at1',
      'x-custodian-csrf': '1',
    });
  });

  it('answers the status of a call beside its body, each call its own (202: held for approval)', async () => {
    const { fetchImpl } = fakeApi([
      { status: 200, body: tokens(1) },
      { status: 202, body: { id: 'pa-1', state: 'pending' } },
      { status: 201, body: { id: 'u2' } },
    ]);
    const api = new ApiClient({ fetch: fetchImpl });
    await api.login('a@b', 'pw');
    const [held, created] = await Promise.all([
      api.withStatus((c) => c.permissionSetsAssign({ id: 's1', body: { userId: 'u1' } })),
      api.withStatus((c) => c.usersCreate({ body: { email: 'c@d', displayName: 'C', password: 'pw' } })),
    ]);
    expect(held).toEqual({ status: 202, body: { id: 'pa-1', state: 'pending' } });
    expect(created).toEqual({ status: 201, body: { id: 'u2' } });
  });

  it('never sends the session to another origin', async () => {
    const { calls, fetchImpl } = fakeApi([{ status: 200, body: tokens(1) }]);
    const api = new ApiClient({ fetch: fetchImpl, origin: 'https://console.example' });
    await api.login('a@b', 'pw');
    const elsewhere = api.client.withToken(undefined);
    (elsewhere as unknown as { options: { baseUrl: string } }).options.baseUrl = 'https://evil.example';
    await expect(elsewhere.authMe()).rejects.toThrow(/another origin/);
    expect(calls).toHaveLength(1);
  });

  it('shows a CustodianApiError of the typed client as the same problem (code, status, request id, detail)', () => {
    const mapped = asApiError(new CustodianApiError(409, 'conflict', 'req-1', 'already there', { field: 'email' }));
    expect(mapped).toBeInstanceOf(ApiError);
    expect(mapped).toMatchObject({
      status: 409,
      code: 'conflict',
      requestId: 'req-1',
      detail: 'already there',
      details: { field: 'email' },
    });
    const own = new ApiError(400, 'bad_request', undefined, 'no', undefined);
    expect(asApiError(own)).toBe(own);
    expect(asApiError(new Error('a bug'))).toBeUndefined();
  });

  it('parses Server-Sent Events across chunk boundaries, skipping comments', () => {
    const first = parseSse('event: delta\ndata: {"text":"Hel"}\n\n: ping\n\nevent: delta\ndata: {"te');
    expect(first.events).toEqual([{ event: 'delta', data: { text: 'Hel' } }]);
    const second = parseSse(`${first.rest}xt":"lo"}\n\nevent: done\ndata: {}\n\n`);
    expect(second.events).toEqual([
      { event: 'delta', data: { text: 'lo' } },
      { event: 'done', data: {} },
    ]);
    expect(second.rest).toBe('');
  });

  it('streams Server-Sent Events from a POST (the turn) and a GET (live events), with the bearer and no body on GET', async () => {
    const seen: Array<{ method: string; body: unknown; accept: string; auth: string }> = [];
    const fetchImpl = async (url: string, init?: RequestInit): Promise<Response> => {
      const headers = init?.headers as Record<string, string>;
      seen.push({ method: init?.method ?? 'GET', body: init?.body, accept: headers.accept, auth: headers.authorization });
      if (url.endsWith('/auth/login')) return new Response(JSON.stringify(tokens(1)), { status: 200 });
      return new Response('event: delta\ndata: {"text":"Hi"}\n\nevent: done\ndata: {}\n\n', {
        status: 200,
        headers: { 'content-type': 'text/event-stream' },
      });
    };
    const api = new ApiClient({ fetch: fetchImpl });
    await api.login('a@b', 'pw');
    const events: string[] = [];
    await api.stream('/agent/conversations/c/messages', { content: 'hello' }, (e) => events.push(e));
    await api.stream('/agent/conversations/c/events', undefined, (e) => events.push(e), { method: 'GET' });
    expect(events).toEqual(['delta', 'done', 'delta', 'done']);
    expect(seen.slice(1)).toEqual([
      {
        method: 'POST',
        body: JSON.stringify({ content: 'hello' }),
        accept: expect.stringContaining('text/event-stream'),
        auth: 'Bearer at1',
      },
      { method: 'GET', body: undefined, accept: expect.stringContaining('text/event-stream'), auth: 'Bearer at1' },
    ]);
  });
});
