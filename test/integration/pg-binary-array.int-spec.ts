import { Client } from 'pg';
import { pgInt8Array, pgJsonbArray, pgTextArray, pgUuidArray } from '@custodian/platform';
import { adminUrl } from '../support/database';

/**
 * Binary array parameters must store exactly what node-postgres's text literals store: every case
 * is sent both ways and the results compared, on a real PostgreSQL.
 */
describe('binary array parameters (pg-binary-array)', () => {
  let pg: Client;

  beforeAll(async () => {
    pg = new Client({ connectionString: adminUrl() });
    await pg.connect();
  });
  afterAll(async () => {
    await pg.end();
  });

  /** The array's elements as PostgreSQL's text output (NULL stays null), in order. */
  const roundTrip = async (cast: string, param: unknown): Promise<Array<string | null>> => {
    const { rows } = await pg.query<{ v: string | null }>(
      `SELECT u.v::text AS v FROM unnest($1::${cast}[]) WITH ORDINALITY AS u(v, n) ORDER BY u.n`,
      [param],
    );
    return rows.map((r) => r.v);
  };
  const errorCode = async (cast: string, param: unknown): Promise<string | undefined> =>
    pg.query(`SELECT cardinality($1::${cast}[])`, [param]).then(
      () => undefined,
      (e: { code?: string }) => e.code,
    );

  const awkward = [
    '',
    'NULL',
    'null',
    'plain',
    ' leading and trailing ',
    'quote " and backslash \\ and \\"',
    '{braces},[brackets],commas',
    'tab\tnewline\nreturn\r',
    'héllo — ünïcödé ✓',
    'emoji 🔐 and 𝔘 astral',
    'x'.repeat(10_000),
  ];

  it('text[]: every awkward string and NULL arrive exactly as the text literal sends them', async () => {
    const values = [...awkward, null, undefined];
    const binary = pgTextArray(values);
    expect(Buffer.isBuffer(binary)).toBe(true);
    const viaBinary = await roundTrip('text', binary);
    expect(viaBinary).toEqual(await roundTrip('text', values));
    expect(viaBinary).toEqual([...awkward, null, null]);
  });

  it('jsonb[]: documents parse and normalize as in the text path; invalid JSON is refused the same way', async () => {
    const docs = [
      '{"a":1,"b":"quote \\" backslash \\\\ unicode \\u00e9 ✓ 🔐"}',
      '[1,2.5,-3e2,true,false,null]',
      '"just a string"',
      '{"nested":{"deep":[{"k":"v"}]},"empty":{}}',
      null,
    ];
    const viaBinary = await roundTrip('jsonb', pgJsonbArray(docs));
    expect(viaBinary).toEqual(await roundTrip('jsonb', docs));
    expect(viaBinary[4]).toBeNull();
    const bad = ['{"ok":true}', '{not json'];
    expect(await errorCode('jsonb', pgJsonbArray(bad))).toBe('22P02');
    expect(await errorCode('jsonb', bad)).toBe('22P02');
  });

  it('int8[]: the full safe-integer range and NULL; anything else is refused before it is sent', async () => {
    const values = [0, 1, -1, 4_294_967_296, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, null];
    const viaBinary = await roundTrip('int8', pgInt8Array(values));
    expect(viaBinary).toEqual(['0', '1', '-1', '4294967296', '9007199254740991', '-9007199254740991', null]);
    expect(viaBinary).toEqual(await roundTrip('int8', values));
    expect(() => pgInt8Array([1.5])).toThrow(RangeError);
    expect(() => pgInt8Array([2 ** 53])).toThrow(RangeError);
    expect(() => pgInt8Array([Number.NaN])).toThrow(RangeError);
  });

  it('uuid[]: canonical UUIDs (any case) go binary; anything else is left for PostgreSQL to judge', async () => {
    const canonical = ['0190a5b6-7c8d-7e9f-8a0b-1c2d3e4f5a6b', 'FFFFFFFF-FFFF-4FFF-BFFF-FFFFFFFFFFFF', null];
    const binary = pgUuidArray(canonical);
    expect(Buffer.isBuffer(binary)).toBe(true);
    const viaBinary = await roundTrip('uuid', binary);
    expect(viaBinary).toEqual(['0190a5b6-7c8d-7e9f-8a0b-1c2d3e4f5a6b', 'ffffffff-ffff-4fff-bfff-ffffffffffff', null]);
    expect(viaBinary).toEqual(await roundTrip('uuid', canonical));

    const braced = ['{0190a5b6-7c8d-7e9f-8a0b-1c2d3e4f5a6b}'];
    expect(pgUuidArray(braced)).toBe(braced);
    expect(await roundTrip('uuid', pgUuidArray(braced))).toEqual(['0190a5b6-7c8d-7e9f-8a0b-1c2d3e4f5a6b']);
    const garbage = ['0190a5b6-7c8d-7e9f-8a0b-1c2d3e4f5a6b', 'not-a-uuid'];
    expect(pgUuidArray(garbage)).toBe(garbage);
    expect(await errorCode('uuid', pgUuidArray(garbage))).toBe('22P02');
  });

  it('empty arrays are empty for every type', async () => {
    for (const [cast, param] of [
      ['text', pgTextArray([])],
      ['jsonb', pgJsonbArray([])],
      ['int8', pgInt8Array([])],
      ['uuid', pgUuidArray([])],
    ] as const) {
      const { rows } = await pg.query<{ n: number }>(`SELECT coalesce(cardinality($1::${cast}[]), -1) AS n`, [param]);
      expect(rows[0].n).toBe(0);
    }
  });

  it('PostgreSQL refuses an array whose element type does not match the cast', async () => {
    expect(await errorCode('uuid', pgTextArray(['0190a5b6-7c8d-7e9f-8a0b-1c2d3e4f5a6b']))).toBe('42804');
    expect(await errorCode('int8', pgTextArray(['1']))).toBe('42804');
  });

  it('several binary columns unnest together, row by row, in order', async () => {
    const n = 1000;
    const ids = Array.from({ length: n }, (_, i) => `00000000-0000-7000-8000-${i.toString(16).padStart(12, '0')}`);
    const { rows } = await pg.query<{ id: string; seq: string; body: string; doc: { i: number } }>(
      `SELECT u.id::text AS id, u.seq::text AS seq, u.body, u.doc
         FROM unnest($1::uuid[], $2::int8[], $3::text[], $4::jsonb[]) WITH ORDINALITY AS u(id, seq, body, doc, n) ORDER BY u.n`,
      [
        pgUuidArray(ids),
        pgInt8Array(ids.map((_, i) => i + 1)),
        pgTextArray(ids.map((_, i) => `row "${i}"`)),
        pgJsonbArray(ids.map((_, i) => JSON.stringify({ i }))),
      ],
    );
    expect(rows).toHaveLength(n);
    rows.forEach((r, i) => {
      expect(r).toEqual({ id: ids[i], seq: String(i + 1), body: `row "${i}"`, doc: { i } });
    });
  });
});
