import { rolesInDependencyOrder } from './identity-bundle.service';

describe('rolesInDependencyOrder', () => {
  const names = (roles: Array<{ name: string; parent?: string }>, existing: string[] = []): string[] =>
    rolesInDependencyOrder(roles, new Set(existing)).map((r) => r.name);

  it('puts parents first, keeping the given order otherwise', () => {
    expect(names([{ name: 'c', parent: 'b' }, { name: 'b', parent: 'a' }, { name: 'a' }, { name: 'd' }])).toEqual(['a', 'b', 'c', 'd']);
  });

  it('accepts a parent that already exists in the org', () => {
    expect(names([{ name: 'child', parent: 'ceo' }], ['ceo'])).toEqual(['child']);
  });

  it('refuses an unknown parent and a cycle with the path of the offending entry', () => {
    expect(() => names([{ name: 'a', parent: 'nobody' }])).toThrow(expect.objectContaining({ code: 'validation_failed' }));
    try {
      names([
        { name: 'a', parent: 'b' },
        { name: 'b', parent: 'c' },
        { name: 'c', parent: 'a' },
      ]);
      throw new Error('no error');
    } catch (error) {
      expect((error as { details: { issues: Array<{ path: string; message: string }> } }).details.issues[0]).toEqual({
        path: '/roles/0/parent',
        message: 'Roles form a cycle (a > b > c > a)',
      });
    }
  });
});
