import type { Decision } from '@custodian/policy';
import type { StoredObjectDefinition } from '../metadata/object-definition.schema';
import { ListStatementCache, MAX_STATEMENTS_PER_DECISION } from './list-statement-cache';
import { buildListSql, type ListSpec } from './record-query';

jest.mock('./record-query', () => ({ ...jest.requireActual<object>('./record-query'), buildListSql: jest.fn() }));
const build = buildListSql as jest.MockedFunction<typeof buildListSql>;

const ORG = '0190a5a8-0000-7000-8000-000000000001';
const spec = (over: Partial<ListSpec> = {}): ListSpec => ({ object: 'deal', orderBy: [], limit: 50, offset: 0, ...over });
const decision = (): Decision => ({}) as Decision;
const def = (): StoredObjectDefinition => ({}) as StoredObjectDefinition;

describe('ListStatementCache (a list asked again skips the build)', () => {
  let n = 0;
  beforeEach(() => {
    build.mockReset();
    build.mockImplementation(() => ({
      text: `SELECT ${++n}`,
      params: [n],
      fields: ['id'],
      keyCount: 0,
      shape: 's',
      convert: (row) => row,
    }));
  });

  it('the same decision, definition and request get the statement built the first time, frozen', () => {
    const cache = new ListStatementCache();
    const [d, o] = [decision(), def()];
    const first = cache.get(d, o, ORG, spec(), { guard: true });
    expect(cache.get(d, o, ORG, spec(), { guard: true })).toBe(first);
    expect(build).toHaveBeenCalledTimes(1);
    expect(Object.isFrozen(first) && Object.isFrozen(first.params) && Object.isFrozen(first.fields)).toBe(true);
  });

  it('another decision (credential, policy version, metadata), definition, org, guard or request is built anew', () => {
    const cache = new ListStatementCache();
    const [d, o] = [decision(), def()];
    cache.get(d, o, ORG, spec());
    cache.get(decision(), o, ORG, spec());
    cache.get(d, def(), ORG, spec());
    cache.get(d, o, '0190a5a8-0000-7000-8000-000000000002', spec());
    cache.get(d, o, ORG, spec(), { guard: true });
    cache.get(d, o, ORG, spec({ where: { stage: 'won' } }));
    cache.get(d, o, ORG, spec({ cursor: 'abc' }));
    expect(build).toHaveBeenCalledTimes(7);
  });

  it('plain pages (no where, no fields) differing in order, paging or cursor get statements of their own', () => {
    const cache = new ListStatementCache();
    const [d, o] = [decision(), def()];
    const variants: ListSpec[] = [
      spec(),
      spec({ limit: 51 }),
      spec({ offset: 1 }),
      spec({ orderBy: [{ field: 'name', order: 'asc' }] }),
      spec({ orderBy: [{ field: 'name', order: 'desc' }] }),
      spec({
        orderBy: [
          { field: 'name', order: 'asc' },
          { field: 'amount', order: 'asc' },
        ],
      }),
      spec({
        orderBy: [
          { field: 'amount', order: 'asc' },
          { field: 'name', order: 'asc' },
        ],
      }),
      spec({ cursor: '' }),
      spec({ cursor: 'abc' }),
      spec({ cursor: '-' }),
      spec({ object: 'deals' }),
      spec({ where: {} }),
      spec({ fields: ['id'] }),
    ];
    const built = variants.map((v) => cache.get(d, o, ORG, v));
    expect(new Set(built).size).toBe(variants.length);
    variants.forEach((v, i) => expect(cache.get(d, o, ORG, { ...v })).toBe(built[i]));
    expect(build).toHaveBeenCalledTimes(variants.length);
  });

  it('a refused request is not kept: the build refuses it again', () => {
    const cache = new ListStatementCache();
    const [d, o] = [decision(), def()];
    build.mockImplementation(() => {
      throw new Error('field_not_readable');
    });
    expect(() => cache.get(d, o, ORG, spec({ fields: ['margin'] }))).toThrow('field_not_readable');
    expect(() => cache.get(d, o, ORG, spec({ fields: ['margin'] }))).toThrow('field_not_readable');
    expect(build).toHaveBeenCalledTimes(2);
  });

  it('requests JSON cannot tell apart are built every time', () => {
    const cache = new ListStatementCache();
    const [d, o] = [decision(), def()];
    for (const where of [
      { amount: Number.NaN },
      { amount: null },
      { amount: Number.POSITIVE_INFINITY },
      { in: [undefined] },
      { in: [null] },
    ]) {
      cache.get(d, o, ORG, spec({ where }));
      cache.get(d, o, ORG, spec({ where }));
    }
    // Only the two null forms are exact (cached once each): 3 inexact forms × 2 + 2 exact forms × 1.
    expect(build).toHaveBeenCalledTimes(8);
  });

  it('is bounded per decision and definition', () => {
    const cache = new ListStatementCache();
    const [d, o] = [decision(), def()];
    for (let i = 0; i <= MAX_STATEMENTS_PER_DECISION; i++) cache.get(d, o, ORG, spec({ offset: i }));
    cache.get(d, o, ORG, spec({ offset: 0 })); // cleared when full: built again
    expect(build).toHaveBeenCalledTimes(MAX_STATEMENTS_PER_DECISION + 2);
  });
});
