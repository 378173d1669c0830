import {
  compileCatalog,
  compileDecision,
  parseObjectSecurity,
  parsePrincipalSnapshot,
  parseWhere,
  PolicyError,
  type PrincipalSnapshot,
} from '@custodian/policy';

// O5–O8: everything that accepts JSON refuses bad input with a clean 4xx code, before any query.
const catalog = compileCatalog([
  {
    name: 'account',
    sharingModel: 'private',
    fields: [
      { name: 'name', type: 'string' },
      { name: 'amount', type: 'number' },
      { name: 'ssn', type: 'string', sensitive: true },
      { name: 'hidden_note', type: 'string' },
    ],
  },
]);
const snapshot: PrincipalSnapshot = {
  userId: 'u1',
  orgId: 'o1',
  roleId: null,
  ancestorRoleIds: [],
  groupIds: [],
  policyVersion: 1,
  permissionSets: [
    { name: 'reader', objects: { account: { allowRead: true, allowEdit: true } }, fields: { account: { hidden_note: 'none' } } },
  ],
};
const decision = compileDecision(snapshot, catalog);

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof PolicyError) return `${error.status} ${error.code}`;
    throw error;
  }
  return 'no error';
}

function nested(depth: number): unknown {
  let where: unknown = { name: 'x' };
  for (let i = 0; i < depth; i++) where = { $and: [where] };
  return where;
}

describe('ObjectQL where: bad input → 4xx with a code (O5, O7, O8)', () => {
  it.each([
    ['$where', { $where: 'sleep(10)' }, '400 unknown_operator'],
    ['$regex on a field', { name: { $regex: '^a' } }, '400 unknown_operator'],
    ['an unknown operator', { name: { $like: 'a%' } }, '400 unknown_operator'],
    ['an operator in field position', { $name: 'x' }, '400 unknown_operator'],
    ['SQL in a field name', { 'name; DROP TABLE x': 1 }, '400 invalid_name'],
    ['a quoted identifier as field', { 'name"--': 1 }, '400 invalid_name'],
    ['a nested plain object as value', { name: { first: 'a' } }, '400 invalid_value'],
    ['an array as implicit equality', { name: ['a'] }, '400 invalid_value'],
    ['a string where a number is expected', { amount: '1' }, '400 invalid_value'],
    ['null in a comparison', { amount: { $gt: null } }, '400 invalid_value'],
    ['NaN-like value', { amount: { $gt: Number.NaN } }, '400 invalid_value'],
    ['$between with one value', { amount: { $between: [1] } }, '400 invalid_value'],
    ['$contains on a number', { amount: { $contains: '1' } }, '400 invalid_value'],
    ['an empty $or', { $or: [] }, '400 invalid_input'],
    ['an array as the where', [{ name: 'a' }], '400 invalid_input'],
    ['a NUL character', { name: 'a\u0000b' }, '400 invalid_value'],
    ['a lone surrogate', { name: '\ud800' }, '400 invalid_value'],
    ['depth 1,000', nested(1000), '400 filter_too_deep'],
    ['an IN list of 70,000', { name: { $in: Array.from({ length: 70_000 }, (_, i) => `v${i}`) } }, '400 in_list_too_long'],
    ['a 10 MB string', { name: 'x'.repeat(10 * 1024 * 1024) }, '400 value_too_long'],
    ['too many nodes', { $or: Array.from({ length: 300 }, (_, i) => ({ name: `v${i}` })) }, '400 filter_too_complex'],
    ['a sensitive field', { ssn: '123' }, '403 field_not_readable'],
    ['a field set to none', { hidden_note: { $null: false } }, '403 field_not_readable'],
    ['an unknown field (same answer as hidden)', { nope: 1 }, '403 field_not_readable'],
    ['a hidden field deep inside $not/$or', { $not: { $or: [{ name: 'a' }, { ssn: { $startsWith: '1' } }] } }, '403 field_not_readable'],
  ])('%s', (_name, where, expected) => {
    expect(codeOf(() => decision.whereSql('account', where))).toBe(expected);
  });

  it('deep input fails fast (no stack overflow, bounded time)', () => {
    const started = Date.now();
    expect(codeOf(() => decision.whereSql('account', nested(100_000)))).toBe('400 filter_too_deep');
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('values are always bound parameters, never spliced into SQL', () => {
    const evil = "x'); DROP TABLE account; --";
    const sql = decision.whereSql('account', { name: evil, amount: { $in: [1, 2] } });
    expect(sql.text).not.toContain('DROP');
    expect(sql.params).toEqual([evil, [1, 2]]);
  });

  it('$in: [] matches nothing, never everything (O7)', () => {
    expect(decision.whereSql('account', { name: { $in: [] } }).text).toBe('FALSE');
    expect(decision.whereSql('account', { name: { $nin: [] } }).text).toBe('TRUE');
  });
});

describe('prototype pollution (O6)', () => {
  const polluted = [
    ['__proto__ in a where', '{"__proto__": {"polluted": true}}'],
    ['constructor in a where', '{"constructor": {"prototype": {"polluted": true}}}'],
    ['__proto__ as operator', '{"name": {"__proto__": {"polluted": true}}}'],
    ['prototype nested in $and', '{"$and": [{"name": "a"}, {"prototype": 1}]}'],
  ] as const;

  it.each(polluted)('%s → 400 forbidden_key, Object.prototype intact', (_name, json) => {
    expect(codeOf(() => decision.whereSql('account', JSON.parse(json)))).toBe('400 forbidden_key');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it.each([
    [
      'in a permission set',
      '{"userId":"u","orgId":"o","roleId":null,"ancestorRoleIds":[],"groupIds":[],"policyVersion":1,"permissionSets":[{"name":"x","objects":{"__proto__":{"allowRead":true}}}]}',
    ],
    [
      'as an object name',
      '{"userId":"u","orgId":"o","roleId":null,"ancestorRoleIds":[],"groupIds":[],"policyVersion":1,"permissionSets":[{"name":"x","objects":{"constructor":{"allowRead":true}}}]}',
    ],
    [
      'in field levels',
      '{"userId":"u","orgId":"o","roleId":null,"ancestorRoleIds":[],"groupIds":[],"policyVersion":1,"permissionSets":[{"name":"x","fields":{"a":{"prototype":"edit"}}}]}',
    ],
  ])('snapshot with a forbidden key %s → 400 forbidden_key', (_name, json) => {
    expect(codeOf(() => parsePrincipalSnapshot(JSON.parse(json)))).toBe('400 forbidden_key');
    expect(codeOf(() => compileDecision(JSON.parse(json), catalog))).toBe('400 forbidden_key');
    expect(({} as Record<string, unknown>).allowRead).toBeUndefined();
  });

  it('object metadata with a forbidden key anywhere → 400 forbidden_key', () => {
    const meta = JSON.parse(
      '{"name":"deal","sharingModel":"private","fields":[],"sharingRules":[{"name":"r","type":"criteria","criteria":{"__proto__":{"x":1}},"sharedWith":{"type":"user","id":"u"},"accessLevel":"read"}]}',
    );
    expect(codeOf(() => parseObjectSecurity(meta))).toBe('400 forbidden_key');
    expect(codeOf(() => compileCatalog([meta]))).toBe('400 forbidden_key');
  });

  it('an object literally named constructor is refused as a name', () => {
    expect(codeOf(() => compileCatalog([{ name: 'constructor', sharingModel: 'private', fields: [] }]))).toBe('400 invalid_name');
    expect(codeOf(() => compileCatalog([{ name: 'a', sharingModel: 'private', fields: [{ name: 'prototype', type: 'string' }] }]))).toBe(
      '400 invalid_name',
    );
  });

  it('a write body with __proto__ → 400 forbidden_key, nothing assigned', () => {
    expect(codeOf(() => decision.assertWritable('edit', 'account', JSON.parse('{"name":"a","__proto__":{"x":1}}')))).toBe(
      '400 forbidden_key',
    );
  });

  it('type-level checks on prototype names answer false', () => {
    expect(decision.can('read', '__proto__')).toBe(false);
    expect(decision.can('read', 'constructor')).toBe(false);
    expect(decision.can('read', 'toString')).toBe(false);
  });
});

describe('schema validation of model inputs', () => {
  it.each([
    ['a missing orgId', { userId: 'u', roleId: null, ancestorRoleIds: [], groupIds: [], policyVersion: 1, permissionSets: [] }],
    [
      'an unknown capability',
      {
        userId: 'u',
        orgId: 'o',
        roleId: null,
        ancestorRoleIds: [],
        groupIds: [],
        policyVersion: 1,
        permissionSets: [{ name: 'x', systemCapabilities: ['root'] }],
      },
    ],
    [
      'an unknown agent scope',
      {
        userId: 'u',
        orgId: 'o',
        roleId: null,
        ancestorRoleIds: [],
        groupIds: [],
        policyVersion: 1,
        permissionSets: [],
        agent: { clientId: 'c', name: 'n', scopes: ['admin'] },
      },
    ],
    [
      'a negative policy version',
      { userId: 'u', orgId: 'o', roleId: null, ancestorRoleIds: [], groupIds: [], policyVersion: -1, permissionSets: [] },
    ],
    [
      'an extra property',
      { userId: 'u', orgId: 'o', roleId: null, ancestorRoleIds: [], groupIds: [], policyVersion: 1, permissionSets: [], admin: true },
    ],
  ])('snapshot with %s → 400 invalid_input', (_name, input) => {
    expect(codeOf(() => parsePrincipalSnapshot(input))).toBe('400 invalid_input');
  });

  it.each([
    [
      'controlled_by_parent without master-detail',
      [{ name: 'a', sharingModel: 'controlled_by_parent', fields: [] }],
      '422 invalid_metadata',
    ],
    [
      'a parent cycle',
      [
        {
          name: 'a',
          sharingModel: 'controlled_by_parent',
          masterDetailField: 'b_id',
          fields: [{ name: 'b_id', type: 'master_detail', reference: 'b' }],
        },
        {
          name: 'b',
          sharingModel: 'controlled_by_parent',
          masterDetailField: 'a_id',
          fields: [{ name: 'a_id', type: 'master_detail', reference: 'a' }],
        },
      ],
      '422 invalid_metadata',
    ],
    [
      'a criteria rule with an unknown operator',
      [
        {
          name: 'a',
          sharingModel: 'private',
          fields: [],
          sharingRules: [
            { name: 'r', type: 'criteria', criteria: { id: { $regex: 'x' } }, sharedWith: { type: 'user', id: 'u' }, accessLevel: 'read' },
          ],
        },
      ],
      '422 invalid_metadata',
    ],
    [
      'a field that shadows a system field',
      [{ name: 'a', sharingModel: 'private', fields: [{ name: 'owner_id', type: 'string' }] }],
      '422 invalid_metadata',
    ],
    ['an unknown sharing model', [{ name: 'a', sharingModel: 'open', fields: [] }], '400 invalid_input'],
    ['an uppercase object name', [{ name: 'Account', sharingModel: 'private', fields: [] }], '400 invalid_input'],
  ])('catalog with %s → %s', (_name, objects, expected) => {
    expect(codeOf(() => compileCatalog(objects))).toBe(expected);
  });
});

describe('parseWhere without a reader (policy criteria run with system rights)', () => {
  it('accepts sensitive fields in criteria', () => {
    const types = catalog.get('account')!.fieldTypes;
    expect(parseWhere({ ssn: { $null: false } }, { typeOf: (f) => types.get(f) })).toEqual({
      kind: 'not',
      child: { kind: 'leaf', op: 'null', field: 'ssn', fieldType: 'string', value: null },
    });
  });
});
