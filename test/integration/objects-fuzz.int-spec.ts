import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { apiClient, type Json } from '../support/api';
import { login, startTestHost, type TestHost } from '../support/host';
import { defineDealsWithFullAccess } from '../support/objects';

/**
 * "Bad input never gives a 5xx", tested by throwing generated requests at the records API of a
 * real host (all services in this process, real PostgreSQL, loopback only): ObjectQL bodies with
 * random where trees (wrong value types, unknown operators, $-keys, prototype keys, huge numbers,
 * NaN-ish strings, deep nesting, long strings), random orderBy, limits and cursors (real cursors
 * tampered with), random paths and record ids, and random headers (Content-Encoding with bodies
 * that do or do not decode, Content-Type, If-Match, Idempotency-Key, Authorization,
 * Custodian-Policy-Version). Every answer must be below 500, and every 4xx a problem document
 * with a code. The run is seeded, so a failure is reproduced by running the test again.
 */
const SEED = 20_260_512;
const REQUESTS = 700;

interface FuzzRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  /** Which generator made it, for the failure report. */
  kind: string;
}

/** The generator's view of the host, filled in by the setup (tokens, real ids and cursors). */
interface World {
  token: string;
  ids: string[];
  cursors: Array<{ spec: Record<string, unknown>; cursor: string }>;
}

const ACCOUNT_FIELDS = [
  { name: 'name', type: 'text' },
  { name: 'revenue', type: 'number' },
  { name: 'price', type: 'currency' },
  { name: 'active', type: 'boolean' },
  { name: 'closed_at', type: 'datetime' },
  { name: 'signed_on', type: 'date' },
  { name: 'region', type: 'select', options: ['west', 'east'] },
  { name: 'tags', type: 'multiselect', options: ['hot', 'cold'] },
  { name: 'email', type: 'email' },
  { name: 'website', type: 'url' },
  { name: 'doc', type: 'json' },
  { name: 'parent_id', type: 'lookup', reference: 'account' },
];
const REAL_FIELDS = [
  ...['id', 'org_id', 'owner_id', 'created_by', 'updated_by', 'created_at', 'updated_at', 'version'],
  ...ACCOUNT_FIELDS.map((f) => f.name),
  ...['account_id', 'title'],
];
const ODD_FIELDS = ['nope', 'Name', '', '__proto__', 'constructor', 'prototype', 'a'.repeat(80), 'name.first', 'tags[0]'];
const FIELD_NAMES = [...REAL_FIELDS, ...ODD_FIELDS];
/** Mostly fields that exist, so that requests get past the name checks to the value checks. */
const fieldName = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(...REAL_FIELDS) },
  { weight: 1, arbitrary: fc.constantFrom(...ODD_FIELDS) },
);
const GROUP_KEYS = ['$and', '$or', '$not', '$nor', '$where', '$expr', '$text', '$'];
const OPERATORS = [
  ...['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$between', '$contains', '$startsWith', '$endsWith'],
  ...['$null', '$exists', '$not', '$regex', '$options', '$size', '$all', '$elemMatch', '$type', '$mod', 'eq', '$EQ'],
];
const ODD_STRINGS = [
  ...['', 'x', 'NaN', '-NaN', 'Infinity', '-Infinity', '1e309', '-1e-400', '0x10', '1_000', ' 1', '1 ', 'true', 'null', 'undefined'],
  ...['2024-02-30', '0000-01-01', '2024-01-01T24:00:00Z', '2024-01-01T00:00:00+16:00', '2024-13-01T00:00:00Z', '9999-12-31T23:59:59-15:59'],
  ...['+010000-01-01T00:00:00Z', '2024-01-01 00:00:00+00', 'epoch', 'infinity', '{}', '[]', '\u0000', 'a\u0000b', '\ud800', '\udfff'],
  ...['🙂', 'Ω≈ç√', "'; DROP TABLE x;--", '%s%n', '../../etc/passwd', '\\', '"', 'west', 'hot;cold'],
  ...['00000000-0000-0000-0000-000000000000', '00000000-0000-4000-8000-00000000000Z', '{00000000-0000-4000-8000-000000000000}'],
  ...['00000000000040008000000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'x'.repeat(1025), 'é'.repeat(2049)],
];
const ODD_NUMBERS = [0, -0, 1, -1, 0.5, 2 ** 31 - 1, 2 ** 31, -(2 ** 31) - 1, 2 ** 53, 2 ** 63, 2 ** 64, 1e308, -1e308, 5e-324, 1e-7];
const PRINTABLE = fc.constantFrom(...' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~');
const headerText = (maxLength: number): fc.Arbitrary<string> => fc.string({ unit: PRINTABLE, maxLength });

const scalar: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(...ODD_STRINGS),
  fc.constantFrom(...ODD_NUMBERS),
  fc.uuid(),
  fc.uuid().map((u) => u.toUpperCase()),
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc
    .date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T00:00:00Z'), noInvalidDate: true })
    .map((d) => d.toISOString()),
);

/** Builds an object with own properties for any keys, `__proto__` included (as JSON.parse would). */
function own(entries: Array<[string, unknown]>): Record<string, unknown> {
  const obj: Record<string, unknown> = {};
  for (const [k, v] of entries) Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
  return obj;
}

const { where } = fc.letrec<{ where: Record<string, unknown>; spec: unknown; ops: Record<string, unknown> }>((tie) => ({
  where: fc
    .array(
      fc.tuple(
        fc.oneof(
          { weight: 6, arbitrary: fieldName },
          { weight: 1, arbitrary: fc.constantFrom('$and', '$or', '$not') },
          fc.constantFrom(...GROUP_KEYS),
        ),
        tie('spec'),
      ),
      { maxLength: 3 },
    )
    .map(own),
  spec: fc.oneof({ depthSize: 'small' }, scalar, tie('ops'), fc.array(fc.oneof(scalar, tie('where')), { maxLength: 4 }), tie('where')),
  ops: fc
    .array(
      fc.tuple(
        fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...OPERATORS.slice(0, 14)) }, fc.constantFrom(...OPERATORS)),
        fc.oneof({ weight: 4, arbitrary: scalar }, fc.array(scalar, { maxLength: 5 }), tie('ops'), tie('where')),
      ),
      { maxLength: 2 },
    )
    .map(own),
}));

const LEAF_OPERATORS = ['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$contains', '$startsWith', '$endsWith'];
const ID_FIELDS = ['id', 'org_id', 'owner_id', 'created_by', 'updated_by', 'parent_id'];
const TEXT_FIELDS = ['name', 'signed_on', 'region', 'tags', 'email', 'website', 'doc'];

/**
 * A value of the JavaScript type the field's filter takes, that may still be wrong for the
 * database: any string for an id, any number for an integer, any ISO-looking text for a date-time.
 * These get past the shape checks, so they test what happens when the value reaches SQL.
 */
function valueFor(field: string): fc.Arbitrary<unknown> {
  if (ID_FIELDS.includes(field))
    return fc.oneof(
      fc.uuid(),
      fc.constantFrom(...ODD_STRINGS),
      fc.string({ maxLength: 40 }),
      fc.uuid().map((u) => u.slice(0, 35)),
    );
  if (field === 'version') return fc.oneof(fc.integer(), fc.constantFrom(2 ** 31, -(2 ** 31) - 1, 2 ** 40, 2 ** 53 - 1, -(2 ** 53) + 1));
  if (field === 'revenue' || field === 'price')
    return fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(...ODD_NUMBERS));
  if (field === 'active') return fc.boolean();
  if (field === 'closed_at' || field === 'created_at' || field === 'updated_at')
    return fc.oneof(
      fc.constantFrom(...ODD_STRINGS.filter((v) => /^\d/.test(v))),
      fc
        .tuple(
          fc.integer({ min: 0, max: 9999 }),
          fc.integer({ min: 0, max: 13 }),
          fc.integer({ min: 0, max: 32 }),
          fc.integer({ min: 0, max: 25 }),
          fc.integer({ min: 0, max: 61 }),
          fc.constantFrom('Z', '+00:00', '+15:59', '-16:00', '+01:60', ''),
          fc.boolean(),
        )
        .map(([y, mo, d, h, mi, tz, dateOnly]) => {
          const p = (n: number, w = 2): string => String(n).padStart(w, '0');
          return dateOnly ? `${p(y, 4)}-${p(mo)}-${p(d)}` : `${p(y, 4)}-${p(mo)}-${p(d)}T${p(h)}:${p(mi)}:00${tz}`;
        }),
    );
  return fc.oneof(fc.constantFrom(...ODD_STRINGS), fc.string({ maxLength: 30 }));
}

/** One field's condition in a well-formed shape: the operators its type takes, values of its JSON type (or any). */
const fieldCondition: fc.Arbitrary<[string, unknown]> = fc.constantFrom(...REAL_FIELDS.slice(0, -2)).chain((field) => {
  const value = fc.oneof({ weight: 4, arbitrary: valueFor(field) }, scalar);
  const ordered = !ID_FIELDS.includes(field) && field !== 'active';
  const text = TEXT_FIELDS.includes(field);
  const ops = [
    '$eq',
    '$ne',
    ...(ordered ? ['$gt', '$gte', '$lt', '$lte'] : []),
    ...(text ? ['$contains', '$startsWith', '$endsWith'] : []),
  ];
  const condition = fc.oneof(
    { weight: 3, arbitrary: value },
    { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...ops), value).map(([op, v]) => ({ [op]: v })) },
    fc.tuple(fc.constantFrom('$in', '$nin'), fc.array(value, { maxLength: 5 })).map(([op, v]) => ({ [op]: v })),
    fc.tuple(value, value).map((pair) => (ordered ? { $between: pair } : { $in: pair })),
    fc.tuple(fc.constantFrom('$null', '$exists'), fc.boolean()).map(([op, v]) => ({ [op]: v })),
    fc.tuple(fc.constantFrom(...ops), value).map(([op, v]) => ({ $not: { [op]: v } })),
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...LEAF_OPERATORS), scalar).map(([op, v]) => ({ [op]: v })) },
  );
  return condition.map((c): [string, unknown] => [field, c]);
});
/** Well-formed filters (known fields, the operators their types take, bounded) with values that may not fit. */
const { shapedWhere } = fc.letrec<{ shapedWhere: unknown }>((tie) => ({
  shapedWhere: fc.oneof(
    { depthSize: 'small', maxDepth: 4 },
    { weight: 4, arbitrary: fc.array(fieldCondition, { minLength: 1, maxLength: 2 }).map(own) },
    fc.array(tie('shapedWhere'), { minLength: 1, maxLength: 3 }).map((parts) => ({ $or: parts })),
    fc.array(tie('shapedWhere'), { minLength: 1, maxLength: 3 }).map((parts) => ({ $and: parts })),
    tie('shapedWhere').map((part) => ({ $not: part })),
  ),
}));

/** Filters past the depth, node and list bounds, and values past the length bound. */
const hugeWhere: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: 5, max: 60 }).map((n) => {
    let w: unknown = { name: 'x' };
    for (let i = 0; i < n; i++) w = i % 2 ? { $not: w } : { $and: [w, { revenue: { $gt: i } }] };
    return w;
  }),
  fc
    .integer({ min: 900, max: 1200 })
    .map((n) => ({ id: { $in: Array.from({ length: n }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`) } })),
  fc.integer({ min: 200, max: 400 }).map((n) => ({ $or: Array.from({ length: n }, (_, i) => ({ revenue: i })) })),
  fc.integer({ min: 1000, max: 70_000 }).map((n) => ({ name: 'y'.repeat(n) })),
);

const orderBy: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 30, arbitrary: fc.array(fc.record({ field: fieldName, order: fc.constantFrom('asc', 'desc') }), { maxLength: 3 }) },
  fc.array(
    fc.record(
      {
        field: fc.oneof(fc.constantFrom(...FIELD_NAMES), scalar),
        order: fc.oneof(fc.constantFrom('asc', 'desc', 'ASC', '', 'up'), scalar),
      },
      { requiredKeys: ['field'] },
    ),
    { maxLength: 4 },
  ),
  scalar,
);

const limitLike: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 24, arbitrary: fc.integer({ min: 1, max: 200 }) },
  fc.constantFrom(0, 201, -1, 1.5, 1e9, '10', 'x', null),
  scalar,
);

/** Mostly right, now and then wrong: a key that is present (1 in `freq` times absent). */
const sometimes = <T>(arb: fc.Arbitrary<T>, freq: number): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined, freq });
const rarely = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: 12, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });

function objectQl(world: World): fc.Arbitrary<Record<string, unknown>> {
  return fc
    .record({
      object: fc.oneof(
        { weight: 30, arbitrary: fc.constant('account') },
        fc.constantFrom('deal', 'note', 'nope', 'Account', '__proto__', 'a'.repeat(40)),
        scalar,
      ),
      where: sometimes(
        fc.oneof(
          { weight: 12, arbitrary: shapedWhere },
          { weight: 4, arbitrary: where },
          { weight: 1, arbitrary: hugeWhere },
          { weight: 1, arbitrary: scalar },
        ),
        8,
      ),
      orderBy: sometimes(orderBy, 2),
      limit: sometimes(limitLike, 2),
      offset: rarely(limitLike),
      cursor: rarely(fc.oneof(fc.constantFrom(...world.cursors.map((c) => c.cursor)), fc.base64String({ maxLength: 200 }), scalar)),
      fields: rarely(fc.oneof({ weight: 4, arbitrary: fc.array(fieldName, { minLength: 1, maxLength: 4 }) }, scalar)),
      aggregate: rarely(
        fc.record(
          {
            aggregations: fc.oneof(
              {
                weight: 3,
                arbitrary: fc.array(
                  fc.record({
                    fn: fc.constantFrom('count', 'sum', 'avg', 'min', 'max', 'median', ''),
                    field: fieldName,
                    as: fc.oneof(fc.constantFrom('n', 'total', '__proto__'), scalar),
                  }),
                  { maxLength: 3 },
                ),
              },
              scalar,
            ),
            groupBy: fc.oneof({ weight: 3, arbitrary: fc.array(fieldName, { maxLength: 3 }) }, scalar),
          },
          { requiredKeys: ['aggregations'] },
        ),
      ),
      expand: rarely(fc.oneof({ weight: 3, arbitrary: fc.constant(['parent_id']) }, fc.array(fieldName, { maxLength: 3 }), scalar)),
      junk: fc.oneof({ weight: 40, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: scalar }),
    })
    .map(({ junk, aggregate, ...known }) => ({ ...known, ...aggregate, ...(junk === undefined ? {} : { $junk: junk }) }));
}

/** A real cursor with one part replaced, sent with the query it belongs to (so its shape hash matches). */
function tamperedCursor(world: World): fc.Arbitrary<{ spec: Record<string, unknown>; cursor: string }> {
  return fc
    .tuple(
      fc.constantFrom(...world.cursors),
      fc.constantFrom('k', 'id', 'h', 'whole', 'extra'),
      fc.oneof(scalar, fc.array(scalar, { maxLength: 4 }), fc.constant({ a: 1 })),
      fc.nat(3),
    )
    .map(([{ spec, cursor }, part, value, index]) => {
      const state = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { h: string; k: unknown[]; id: string };
      let tampered: unknown;
      if (part === 'k') {
        const k = [...state.k];
        k[index % Math.max(1, k.length)] = value;
        tampered = { ...state, k };
      } else if (part === 'whole') tampered = value;
      else if (part === 'extra') tampered = { ...state, k: [...state.k, value] };
      else tampered = { ...state, [part]: value };
      return { spec, cursor: Buffer.from(JSON.stringify(tampered) ?? 'undefined').toString('base64url') };
    });
}

const contentEncoding = fc.constantFrom(
  'gzip',
  'br',
  'deflate',
  'identity',
  'compress',
  'zstd',
  'x-gzip',
  'gzip, br',
  'GZIP',
  '',
  'br;q=1',
);

/** A body for a Content-Encoding: rightly encoded, wrongly encoded, truncated, or not encoded at all. */
function encodedBody(json: string): fc.Arbitrary<{ encoding: string; body: Buffer }> {
  return fc
    .tuple(contentEncoding, fc.constantFrom('right', 'plain', 'gzip', 'br', 'deflate', 'truncated', 'garbage'))
    .map(([encoding, how]) => {
      const raw = Buffer.from(json);
      const body =
        how === 'plain'
          ? raw
          : how === 'gzip'
            ? gzipSync(raw)
            : how === 'br'
              ? brotliCompressSync(raw)
              : how === 'deflate'
                ? deflateSync(raw)
                : how === 'truncated'
                  ? gzipSync(raw).subarray(0, 12)
                  : how === 'garbage'
                    ? Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x00, 0xff, 0x01])
                    : encoding.startsWith('gzip') || encoding === 'GZIP' || encoding === 'x-gzip'
                      ? gzipSync(raw)
                      : encoding.startsWith('br')
                        ? brotliCompressSync(raw)
                        : encoding === 'deflate'
                          ? deflateSync(raw)
                          : raw;
      return { encoding, body };
    });
}

function authorization(world: World): fc.Arbitrary<string | undefined> {
  return fc.oneof(
    { weight: 80, arbitrary: fc.constant(`Bearer ${world.token}`) },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 600 }).map((n) => `Bearer cak_${'a'.repeat(n)}`) },
    { weight: 1, arbitrary: headerText(300).map((s) => `Bearer cak_${s}`) },
    { weight: 1, arbitrary: headerText(300).map((s) => `Bearer ${s}`) },
    {
      weight: 1,
      arbitrary: fc.constantFrom('Bearer', 'Bearer ', 'Basic YWRtaW46cGFzcw==', `bearer ${world.token}`, `Bearer  ${world.token}`),
    },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: world.token.length - 1 }).map((n) => `Bearer ${world.token.slice(0, n)}`) },
    { weight: 1, arbitrary: fc.constantFrom('Bearer a.b.c', 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', `Bearer ${'e'.repeat(9000)}`) },
  );
}

function commonHeaders(world: World): fc.Arbitrary<Record<string, string>> {
  return fc
    .record(
      {
        authorization: authorization(world),
        policyVersion: fc.oneof(
          { weight: 60, arbitrary: fc.constant(undefined) },
          fc.constantFrom('0', '1', '2', '99999999'),
          fc.constantFrom('-1', '1.5', 'x', '9'.repeat(30), ''),
          headerText(20),
        ),
        accept: sometimes(fc.constantFrom('application/json', '*/*', 'text/html', 'application/problem+json'), 2),
      },
      { requiredKeys: ['authorization', 'policyVersion', 'accept'] },
    )
    .map(({ authorization: auth, policyVersion, accept }) => ({
      ...(auth === undefined ? {} : { authorization: auth }),
      ...(policyVersion === undefined ? {} : { 'custodian-policy-version': policyVersion }),
      ...(accept === undefined ? {} : { accept }),
    }));
}

const contentType = fc.constantFrom(
  'application/json',
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'application/json; charset=utf-16',
  'application/merge-patch+json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=',
  '',
);

const objectName = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('account', 'account', 'deal') },
  fc.constantFrom('note', 'nope', 'ACCOUNT', '__proto__', 'constructor', 'a'.repeat(40)),
  fc.constantFrom('%00', '%ZZ', '%E0%A4%A', '..', '.', 'account%2Fx', "account'", 'acc%20ount'),
);
const recordIdPart = (world: World): fc.Arbitrary<string> =>
  fc.oneof(
    fc.constantFrom(...world.ids),
    fc.uuid(),
    fc.uuid().map((u) => u.toUpperCase()),
    fc.constantFrom('x', '0', '-1', '%00', '%ZZ', '..', 'null', '00000000000040008000000000000000', 'a'.repeat(5000), '%F0%9F%98%80'),
    headerText(40).map(encodeURIComponent),
  );

const ifMatch = fc.oneof(
  fc.constantFrom('"1"', '"2"', '1', 'W/"1"', 'W/"x"', '*', '"1", "2"', '""', '"99999999999"', '"-1"', '"1.0"', 'w/"1"', ' "1" '),
  headerText(30),
);

const recordBody: fc.Arbitrary<unknown> = fc.oneof(
  fc.array(fc.tuple(fc.constantFrom(...FIELD_NAMES), scalar), { maxLength: 6 }).map(own),
  fc.record({ name: fc.oneof(fc.string({ maxLength: 20 }), scalar) }),
  fc.record({
    name: fc.constant('fuzz'),
    revenue: scalar,
    closed_at: scalar,
    signed_on: scalar,
    parent_id: scalar,
    tags: fc.oneof(fc.array(scalar, { maxLength: 3 }), scalar),
    doc: fc.oneof(where, scalar),
  }),
  scalar,
  fc.array(scalar, { maxLength: 3 }),
);

function requests(world: World): fc.Arbitrary<FuzzRequest> {
  const headers = commonHeaders(world);
  const query: fc.Arbitrary<FuzzRequest> = fc.tuple(objectQl(world), headers).map(([q, h]) => ({
    kind: 'query',
    method: 'POST',
    path: '/query',
    headers: { ...h, 'content-type': 'application/json' },
    body: JSON.stringify(q),
  }));
  const cursor: fc.Arbitrary<FuzzRequest> = fc.tuple(tamperedCursor(world), headers).map(([{ spec, cursor: c }, h]) => ({
    kind: 'cursor',
    method: 'POST',
    path: '/query',
    headers: { ...h, 'content-type': 'application/json' },
    body: JSON.stringify({ ...spec, cursor: c }),
  }));
  const list: fc.Arbitrary<FuzzRequest> = fc
    .tuple(
      objectName,
      fc.array(
        fc.tuple(
          fc.constantFrom('where', 'where', 'orderBy', 'fields', 'limit', 'offset', 'cursor', 'x', 'where[a]', '__proto__'),
          fc.oneof(
            where.map((w) => JSON.stringify(w)),
            headerText(40),
            fc.constantFrom('{', '-name,revenue', 'name,,', '-', '%ZZ'),
          ),
        ),
        { maxLength: 3 },
      ),
      headers,
    )
    .map(([object, params, h]) => ({
      kind: 'list',
      method: 'GET',
      path: `/data/${object}?${params.map(([k, v]) => `${encodeURIComponent(k)}=${v === '%ZZ' ? v : encodeURIComponent(v)}`).join('&')}`,
      headers: h,
    }));
  const byId: fc.Arbitrary<FuzzRequest> = fc
    .tuple(
      fc.constantFrom('GET', 'PATCH', 'DELETE'),
      objectName,
      recordIdPart(world),
      recordBody,
      fc.option(ifMatch, { nil: undefined }),
      contentType,
      headers,
    )
    .map(([method, object, id, body, match, type, h]) => ({
      kind: 'record',
      method,
      path: `/data/${object}/${id}`,
      headers: { ...h, ...(match === undefined ? {} : { 'if-match': match }), ...(method === 'PATCH' ? { 'content-type': type } : {}) },
      ...(method === 'PATCH' ? { body: JSON.stringify(body) ?? '' } : {}),
    }));
  const create: fc.Arbitrary<FuzzRequest> = fc
    .tuple(
      objectName,
      recordBody,
      fc.option(fc.oneof(fc.constantFrom('k1', 'k1', 'k2'), headerText(210)), { nil: undefined }),
      contentType,
      headers,
    )
    .map(([object, body, key, type, h]) => ({
      kind: 'create',
      method: 'POST',
      path: `/data/${object}`,
      headers: { ...h, 'content-type': type, ...(key === undefined ? {} : { 'idempotency-key': key }) },
      body: JSON.stringify(body) ?? '',
    }));
  const encoded: fc.Arbitrary<FuzzRequest> = fc
    .tuple(objectQl(world), headers, fc.oneof({ weight: 6, arbitrary: fc.constant('application/json') }, contentType))
    .chain(([q, h, type]) =>
      encodedBody(JSON.stringify({ object: 'account', where: q.where ?? {} })).map(({ encoding, body }) => ({
        kind: 'encoding',
        method: 'POST' as const,
        path: '/query',
        headers: { ...h, 'content-type': type, 'content-encoding': encoding },
        body,
      })),
    );
  return fc.oneof(
    { weight: 8, arbitrary: query },
    { weight: 4, arbitrary: cursor },
    { weight: 2, arbitrary: list },
    { weight: 3, arbitrary: byId },
    { weight: 2, arbitrary: create },
    { weight: 3, arbitrary: encoded },
  );
}

describe('objects: no generated request gets a 5xx', () => {
  let t: TestHost;
  let base: string;
  const world: World = { token: '', ids: [], cursors: [] };
  const { call, ok } = apiClient(() => base);

  beforeAll(async () => {
    t = await startTestHost('fuzz');
    base = t.host.url;
    const admin = (await login(base)).accessToken;
    world.token = admin;
    await ok(
      call('POST', '/meta/objects', admin, { name: 'account', label: 'Account', sharingModel: 'private', fields: ACCOUNT_FIELDS }),
      201,
    );
    await defineDealsWithFullAccess({ call, ok }, admin);
    for (let i = 0; i < 6; i++) {
      const acc = await ok(
        call('POST', '/data/account', admin, {
          name: `acc ${i}`,
          revenue: i * 10.5,
          active: i % 2 === 0,
          closed_at: `202${i}-0${i + 1}-01T00:00:00Z`,
          signed_on: `202${i}-01-0${i + 1}`,
          region: i % 2 ? 'west' : 'east',
          tags: ['hot'],
          doc: { i },
          ...(world.ids[0] ? { parent_id: world.ids[0] } : {}),
        }),
        201,
      );
      world.ids.push(acc.id);
      const deal = await ok(call('POST', '/data/deal', admin, { title: `deal ${i}`, account_id: acc.id }), 201);
      world.ids.push(deal.id);
    }
    // Real cursors for every sort type, to be tampered with.
    for (const field of ['name', 'revenue', 'active', 'closed_at', 'version', 'parent_id', 'created_at', 'id', 'doc', 'tags']) {
      for (const order of ['asc', 'desc']) {
        const spec = { object: 'account', orderBy: [{ field, order }], limit: 2 };
        const page: Json = await ok(call('POST', '/query', admin, spec));
        if (page.nextCursor) world.cursors.push({ spec, cursor: page.nextCursor });
      }
    }
    const spec = {
      object: 'account',
      orderBy: [{ field: 'region' }, { field: 'revenue', order: 'desc' }],
      where: { active: true },
      limit: 1,
    };
    world.cursors.push({ spec, cursor: (await ok(call('POST', '/query', admin, spec))).nextCursor });
  }, 60_000);

  afterAll(async () => {
    await t?.stop();
  });

  it(`${REQUESTS} seeded requests: every answer is below 500, every 4xx a problem with a code`, async () => {
    const failures: Array<{ request: FuzzRequest; status: number; body: string }> = [];
    const started = Date.now();
    const answers = new Map<string, number>();
    for (const request of fc.sample(requests(world), { seed: SEED, numRuns: REQUESTS })) {
      const res = await fetch(`${base}/api/v1${request.path}`, {
        method: request.method,
        headers: request.headers,
        body: request.body,
        redirect: 'manual',
      });
      const text = await res.text();
      let code: unknown;
      try {
        code = (JSON.parse(text) as { code?: unknown }).code;
      } catch {
        code = undefined;
      }
      const problem =
        res.status < 400 || (/^application\/problem\+json/.test(res.headers.get('content-type') ?? '') && typeof code === 'string');
      if (res.status >= 500 || !problem) failures.push({ request, status: res.status, body: text.slice(0, 300) });
      const key = `${res.status} ${String(code ?? '')}`;
      answers.set(key, (answers.get(key) ?? 0) + 1);
    }
    const shown = failures.slice(0, 8).map((f) => ({
      status: f.status,
      answer: f.body,
      kind: f.request.kind,
      method: f.request.method,
      path: f.request.path.slice(0, 200),
      headers: Object.fromEntries(Object.entries(f.request.headers).map(([k, v]) => [k, v.slice(0, 80)])),
      body: Buffer.isBuffer(f.request.body) ? `<${f.request.body.length} bytes>` : f.request.body?.slice(0, 400),
    }));
    const byKind: Record<string, number> = {};
    for (const f of failures) byKind[`${f.status} ${f.request.kind}`] = (byKind[`${f.status} ${f.request.kind}`] ?? 0) + 1;
    expect({ failures: failures.length, byKind, shown }).toEqual({ failures: 0, byKind: {}, shown: [] });
    // Not vacuous: a fair share of the requests got past authentication and validation to the
    // database and back (the generators keep most requests well-formed but for one part).
    const succeeded = [...answers].filter(([key]) => key.startsWith('2')).reduce((n, [, count]) => n + count, 0);
    expect({ succeeded: succeeded > REQUESTS * 0.08, answers: Object.fromEntries(answers) }).toMatchObject({ succeeded: true });
    expect(Date.now() - started).toBeLessThan(60_000);
  }, 120_000);
});
