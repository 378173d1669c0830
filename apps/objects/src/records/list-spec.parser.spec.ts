import { parseListQuery, parseObjectQl } from './list-spec.parser';

describe('list parameters (R8: bounded before any query)', () => {
  it('parses fields, orderBy, where, limit', () => {
    expect(parseListQuery('account', { fields: 'name,revenue', orderBy: 'name,-revenue', where: '{"a":1}', limit: '10' })).toEqual({
      object: 'account',
      fields: ['name', 'revenue'],
      orderBy: [
        { field: 'name', order: 'asc' },
        { field: 'revenue', order: 'desc' },
      ],
      where: { a: 1 },
      limit: 10,
      offset: 0,
    });
  });

  it.each([
    [{ limit: '1000000000' }],
    [{ limit: '0' }],
    [{ offset: '10001' }],
    [{ offset: '1', cursor: 'x' }],
    [{ orderBy: 'a,b,c,d' }],
    [{ fields: 'a;drop' }],
    [{ where: 'not json' }],
    [{ where: '{"__proto__":{"x":1}}' }],
    [{ surprise: '1' }],
    [{ limit: ['1', '2'] }],
  ])('refuses %j', (query) => {
    expect(() => parseListQuery('account', query as Record<string, unknown>)).toThrow();
  });

  it('ObjectQL refuses unknown keys and a missing object', () => {
    expect(() => parseObjectQl({ object: 'a', $where: 'x' })).toThrow();
    expect(() => parseObjectQl({ where: {} })).toThrow();
    expect(parseObjectQl({ object: 'a', limit: 5 }).spec).toMatchObject({ object: 'a', limit: 5 });
  });
});
