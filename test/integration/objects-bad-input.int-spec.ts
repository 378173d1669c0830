import { brotliCompressSync, gzipSync } from 'node:zlib';
import { apiClient, type ApiResponse, type Json } from '../support/api';
import { login, startTestHost, type TestHost } from '../support/host';
import { defineDealsWithFullAccess } from '../support/objects';

/**
 * Bad input found by an adversarial probe that used to answer 5xx: values PostgreSQL cannot cast
 * (uuid, integer, timestamptz) in a filter or a tampered cursor, a body whose Content-Encoding
 * lies, an over-long API key; and two wrong answers: a weak If-Match tag was accepted, and an
 * Idempotency-Key retry with the same JSON in another key order was a 409.
 */
describe('objects: bad input is a 4xx problem with a code', () => {
  let t: TestHost;
  let base: string;
  let admin: string;
  let account: Json;
  let deal: Json;

  const { call, ok } = apiClient(() => base);
  const query = (body: unknown): Promise<ApiResponse> => call('POST', '/query', admin, body);
  const expectProblem = (res: ApiResponse, status: number, code?: string): void => {
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(typeof res.body.code).toBe('string');
    if (code) expect(res.body.code).toBe(code);
  };
  const raw = async (method: string, path: string, headers: Record<string, string>, body?: Buffer | string): Promise<ApiResponse> => {
    const res = await fetch(`${base}/api/v1${path}`, { method, headers: { authorization: `Bearer ${admin}`, ...headers }, body });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Json) : undefined, headers: res.headers };
  };
  const cursorOf = (c: string): Json => JSON.parse(Buffer.from(c, 'base64url').toString('utf8'));
  const encodeCursor = (state: unknown): string => Buffer.from(JSON.stringify(state)).toString('base64url');

  beforeAll(async () => {
    t = await startTestHost('badinput');
    base = t.host.url;
    admin = (await login(base)).accessToken;
    await ok(
      call('POST', '/meta/objects', admin, {
        name: 'account',
        label: 'Account',
        sharingModel: 'public_read_write',
        fields: [
          { name: 'name', type: 'text' },
          { name: 'revenue', type: 'number' },
          { name: 'active', type: 'boolean' },
          { name: 'closed_at', type: 'datetime' },
          { name: 'parent_id', type: 'lookup', reference: 'account' },
        ],
      }),
      201,
    );
    await defineDealsWithFullAccess({ call, ok }, admin);
    account = await ok(
      call('POST', '/data/account', admin, { name: 'A', revenue: 1, active: true, closed_at: '2024-01-01T00:00:00Z' }),
      201,
    );
    await ok(call('POST', '/data/account', admin, { name: 'B', revenue: 2, active: false, closed_at: '2024-02-01T00:00:00Z' }), 201);
    await ok(call('POST', '/data/account', admin, { name: 'C', revenue: 3, parent_id: account.id }), 201);
    deal = await ok(call('POST', '/data/deal', admin, { title: 'D', account_id: account.id }), 201);
  }, 60_000);

  afterAll(async () => {
    await t?.stop();
  });

  describe('filter values that do not fit the field type', () => {
    it.each([
      ['id', { id: 'x' }],
      ['owner_id', { owner_id: 'x' }],
      ['org_id', { org_id: 'not-a-uuid' }],
      ['created_by', { created_by: { $ne: 'x' } }],
      ['parent_id', { parent_id: 'x' }],
      ['id', { id: { $in: [null, 'x'] } }],
      ['owner_id', { owner_id: { $nin: ['00000000-0000-4000-8000-00000000000Z'] } }],
      ['parent_id', { $or: [{ name: 'A' }, { parent_id: { $eq: '{00000000-0000-4000-8000-000000000000}' } }] }],
      ['version', { version: 1.5 }],
      ['closed_at', { closed_at: '2024-02-30' }],
      ['closed_at', { closed_at: { $lt: '2024-01-01T24:30:00Z' } }],
      ['closed_at', { closed_at: '0000-01-01T00:00:00Z' }],
      ['closed_at', { closed_at: { $gte: '2024-01-01T00:00:00+25:00' } }],
    ])('where on %s: %j → 400 naming the field', async (field, where) => {
      const res = await query({ object: 'account', where });
      expectProblem(res, 400, 'invalid_value');
      expect(res.body.details.field).toBe(field);
    });

    it('a master-detail field takes record ids only', async () => {
      const res = await query({ object: 'deal', where: { account_id: { $in: [account.id, 'x'] } } });
      expectProblem(res, 400, 'invalid_value');
      expect(res.body.details.field).toBe('account_id');
    });

    it('the GET list parameters go through the same checks', async () => {
      const res = await call('GET', `/data/account?where=${encodeURIComponent(JSON.stringify({ owner_id: 'x' }))}`, admin);
      expectProblem(res, 400, 'invalid_value');
    });

    it('well-formed values still filter: upper-case ids match, datetimes in any offset compare as instants', async () => {
      const upper = await ok(query({ object: 'account', where: { id: account.id.toUpperCase() } }));
      expect(upper.items.map((r: Json) => r.id)).toEqual([account.id]);
      const byParent = await ok(query({ object: 'account', where: { parent_id: { $in: [account.id] } } }));
      expect(byParent.items.map((r: Json) => r.name)).toEqual(['C']);
      const byMaster = await ok(query({ object: 'deal', where: { account_id: account.id } }));
      expect(byMaster.items.map((r: Json) => r.id)).toEqual([deal.id]);
      const instants = await ok(query({ object: 'account', where: { closed_at: { $lt: '2024-01-01T01:00:00+01:00' } } }));
      expect(instants.items).toEqual([]);
      const dateOnly = await ok(query({ object: 'account', where: { closed_at: { $lte: '2024-01-01' } } }));
      expect(dateOnly.items.map((r: Json) => r.name)).toEqual(['A']);
      expect((await ok(query({ object: 'account', where: { version: 1 } }))).items.length).toBe(3);
      // Integers beyond the 4-byte version column still compare instead of failing the statement.
      expect((await ok(query({ object: 'account', where: { version: 2 ** 40 } }))).items).toEqual([]);
      expect((await ok(query({ object: 'account', where: { version: { $in: [1, 2 ** 40] } } }))).items.length).toBe(3);
      expect((await ok(query({ object: 'account', where: { version: { $gt: -(2 ** 31) - 1 } } }))).items.length).toBe(3);
    });
  });

  describe('tampered cursors', () => {
    const firstPage = async (orderBy: Json[]): Promise<Json> => {
      const page = await ok(query({ object: 'account', orderBy, limit: 1 }));
      expect(typeof page.nextCursor).toBe('string');
      return cursorOf(page.nextCursor);
    };

    it('a non-uuid id → 400', async () => {
      const state = await firstPage([]);
      const res = await query({ object: 'account', limit: 1, cursor: encodeCursor({ ...state, id: 'x' }) });
      expectProblem(res, 400, 'validation_failed');
    });

    it.each([
      ['revenue', 'abc'],
      ['revenue', '1e999'],
      ['active', 'maybe'],
      ['closed_at', 'yesterday'],
      ['closed_at', '2024-02-30 00:00:00+00'],
      ['version', '99999999999'],
      ['parent_id', 'x'],
      ['name', 'a\u0000b'],
    ])('a sort key on %s set to %j → 400', async (field, value) => {
      const orderBy = [{ field, order: 'desc' }];
      const state = await firstPage(orderBy);
      const res = await query({ object: 'account', orderBy, limit: 1, cursor: encodeCursor({ ...state, k: [value] }) });
      expectProblem(res, 400, 'validation_failed');
    });

    it('an untouched cursor still pages on every sort type', async () => {
      for (const field of ['revenue', 'active', 'closed_at', 'version', 'parent_id', 'name', 'created_at']) {
        const orderBy = [{ field, order: 'asc' }];
        const first = await ok(query({ object: 'account', orderBy, limit: 1 }));
        const second = await ok(query({ object: 'account', orderBy, limit: 1, cursor: first.nextCursor }));
        expect(second.items[0].id).not.toBe(first.items[0].id);
      }
    });
  });

  describe('request bodies and headers', () => {
    const json = JSON.stringify({ object: 'account' });

    it.each([
      ['gzip', Buffer.from('definitely not gzip')],
      ['br', Buffer.from('definitely not brotli')],
      ['deflate', Buffer.from('definitely not deflate')],
      ['gzip', gzipSync(Buffer.from('{"object": "acc'))],
    ])('Content-Encoding: %s with a bad body → 400', async (encoding, body) => {
      const res = await raw('POST', '/query', { 'content-type': 'application/json', 'content-encoding': encoding }, body);
      expectProblem(res, 400);
    });

    it('an unsupported Content-Encoding → 415', async () => {
      const res = await raw('POST', '/query', { 'content-type': 'application/json', 'content-encoding': 'compress' }, json);
      expectProblem(res, 415, 'unsupported_media_type');
    });

    it('a well-formed compressed body is read', async () => {
      for (const [encoding, body] of [
        ['gzip', gzipSync(json)],
        ['br', brotliCompressSync(json)],
      ] as const) {
        const res = await raw('POST', '/query', { 'content-type': 'application/json', 'content-encoding': encoding }, body);
        expect(res.status).toBe(200);
      }
    });

    it('an over-long or malformed API key is 401, exactly like a wrong one', async () => {
      const wrong = await call('GET', '/data/account', `cak_0123456789abcdef_${'A'.repeat(43)}`);
      expectProblem(wrong, 401);
      for (const key of [`cak_${'a'.repeat(300)}`, `cak_${'A'.repeat(253)}`, 'cak_', 'cak_a.b/c+d=']) {
        const res = await call('GET', '/data/account', key);
        expectProblem(res, 401, wrong.body.code);
        expect(res.body.detail).toBe(wrong.body.detail);
      }
    });

    it('If-Match uses strong comparison: a weak tag never matches (412), nothing is written', async () => {
      const rec = await ok(call('POST', '/data/account', admin, { name: 'Weak' }), 201);
      const res = await call('PATCH', `/data/account/${rec.id}`, admin, { name: 'Changed' }, { 'if-match': 'W/"1"' });
      expectProblem(res, 412, 'precondition_failed');
      const del = await call('DELETE', `/data/account/${rec.id}`, admin, undefined, { 'if-match': 'W/"1"' });
      expectProblem(del, 412, 'precondition_failed');
      expect((await ok(call('GET', `/data/account/${rec.id}`, admin))).name).toBe('Weak');
      await ok(call('PATCH', `/data/account/${rec.id}`, admin, { name: 'Changed' }, { 'if-match': '"1"' }));
    });

    it('an Idempotency-Key retry with the same JSON in another key order is a replay, not a 409', async () => {
      const h = { 'idempotency-key': 'order-test' };
      const first = await call('POST', '/data/account', admin, '{"name":"Idem","revenue":5,"active":true}', h);
      const again = await call('POST', '/data/account', admin, '{"active":true,"revenue":5,"name":"Idem"}', h);
      expect([first.status, again.status]).toEqual([201, 201]);
      expect(again.body.id).toBe(first.body.id);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      const other = await call('POST', '/data/account', admin, '{"active":true,"revenue":6,"name":"Idem"}', h);
      expectProblem(other, 409, 'conflict');
    });
  });
});
