import { ScimError, pageOfScim, parseFilter, patchOperations, scimBoolean, scimString } from './scim.http';

const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

const scimTypeOf = (work: () => unknown): string | undefined => {
  try {
    work();
  } catch (error) {
    if (error instanceof ScimError) return error.scimType ?? `status ${error.status}`;
    throw error;
  }
  return undefined;
};

describe('SCIM request parsing', () => {
  it('reads eq filters with any attribute case and escaped quotes', () => {
    expect(parseFilter('userName eq "a@b.c"', ['userName'])).toEqual({ attribute: 'userName', value: 'a@b.c' });
    expect(parseFilter('USERNAME EQ "x\\"y"', ['userName'])).toEqual({ attribute: 'userName', value: 'x"y' });
    expect(parseFilter(undefined, ['userName'])).toBeUndefined();
  });

  it.each([
    ['another operator', 'userName co "a"'],
    ['a conjunction', 'userName eq "a" and active eq true'],
    ['an attribute not offered', 'password eq "a"'],
    ['an unquoted value', 'userName eq a'],
    ['SQL in the attribute', 'userName;drop eq "a"'],
  ])('refuses %s as invalidFilter', (_what, filter) => {
    expect(scimTypeOf(() => parseFilter(filter, ['userName']))).toBe('invalidFilter');
  });

  it('clamps startIndex and count as RFC 7644 says and refuses non-numbers', () => {
    expect(pageOfScim({})).toEqual({ startIndex: 1, count: 100 });
    expect(pageOfScim({ startIndex: '0', count: '5000' })).toEqual({ startIndex: 1, count: 200 });
    expect(pageOfScim({ count: '-3' })).toEqual({ startIndex: 1, count: 0 });
    expect(scimTypeOf(() => pageOfScim({ count: 'ten' }))).toBe('invalidValue');
    expect(scimTypeOf(() => pageOfScim({ startIndex: ['1', '2'] }))).toBe('invalidValue');
  });

  it('lower-cases Entra ID ops and keeps path and value', () => {
    expect(patchOperations({ schemas: [PATCH], Operations: [{ op: 'Replace', path: 'active', value: 'False', name: 'x' }] })).toEqual([
      { op: 'replace', path: 'active', value: 'False' },
    ]);
  });

  it.each([
    ['no PatchOp schema', { Operations: [{ op: 'add', value: {} }] }, 'invalidSyntax'],
    ['no operations', { schemas: [PATCH], Operations: [] }, 'invalidSyntax'],
    ['an unknown op', { schemas: [PATCH], Operations: [{ op: 'move', path: 'a' }] }, 'invalidSyntax'],
    ['a remove without path', { schemas: [PATCH], Operations: [{ op: 'remove' }] }, 'noTarget'],
    ['a path that is not a string', { schemas: [PATCH], Operations: [{ op: 'add', path: 1 }] }, 'invalidPath'],
  ])('refuses %s', (_what, body, scimType) => {
    expect(scimTypeOf(() => patchOperations(body))).toBe(scimType);
  });

  it('reads booleans as Entra ID sends them and refuses control characters in strings', () => {
    expect(scimBoolean('False', 'active')).toBe(false);
    expect(scimBoolean(true, 'active')).toBe(true);
    expect(scimTypeOf(() => scimBoolean('no', 'active'))).toBe('invalidValue');
    expect(scimTypeOf(() => scimString('a\u0000b', 'displayName', 200))).toBe('invalidValue');
    expect(scimTypeOf(() => scimString('x'.repeat(201), 'displayName', 200))).toBe('invalidValue');
    expect(scimString('Ada', 'displayName', 200)).toBe('Ada');
  });
});
