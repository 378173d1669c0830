import {
  DEFAULT_WHERE_LIMITS,
  compileWhereSql,
  conditional,
  evaluateWhere,
  parseWhere,
  PolicyError,
  SYSTEM_FIELDS,
  SqlParams,
  type FieldType,
  type WhereNode,
} from '@custodian/policy';

// Filter values are checked against their field's type before any SQL: a value the database
// could not cast would otherwise fail the whole statement (a 5xx instead of a 400).
const types = new Map<string, FieldType>([
  ...Object.entries(SYSTEM_FIELDS),
  ['account_id', 'master_detail'],
  ['closed_at', 'datetime'],
  ['qty', 'integer'],
  ['name', 'string'],
]);
const resolver = { typeOf: (f: string) => types.get(f) };
const UUID_LIMITS = { ...DEFAULT_WHERE_LIMITS, idFormat: 'uuid' as const };
const ID = '0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b';

function refusal(where: unknown, limits = UUID_LIMITS): PolicyError {
  try {
    parseWhere(where, resolver, limits);
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyError);
    return error as PolicyError;
  }
  throw new Error(`accepted ${JSON.stringify(where)}`);
}

function leafValue(node: WhereNode): unknown {
  if (node.kind !== 'leaf') throw new Error(`not a leaf: ${node.kind}`);
  return node.value;
}

describe('where values against field types', () => {
  it.each(['id', 'org_id', 'owner_id', 'created_by', 'updated_by', 'account_id'])(
    '%s takes UUIDs only when the host stores ids as uuid (400 invalid_value naming the field)',
    (field) => {
      for (const where of [
        { [field]: 'x' },
        { [field]: { $ne: '' } },
        { [field]: { $in: [ID, 'x'] } },
        { [field]: { $nin: [`{${ID}}`] } },
        { [field]: ID.replace(/-/g, '') },
        { $or: [{ name: 'a' }, { [field]: `${ID} ` }] },
      ]) {
        const error = refusal(where);
        expect([error.code, error.status, (error.details as { field: string }).field]).toEqual(['invalid_value', 400, field]);
      }
    },
  );

  it('ids compare in lower case, as the database writes them, so memory and SQL agree', () => {
    const node = parseWhere({ id: ID.toUpperCase() }, resolver, UUID_LIMITS);
    expect(leafValue(node)).toBe(ID);
    expect(evaluateWhere(node, { id: ID })).toBe(true);
  });

  it('ids stay opaque strings by default (hosts with text ids)', () => {
    expect(leafValue(parseWhere({ owner_id: 'u1' }, resolver))).toBe('u1');
  });

  it.each([
    '2024-02-30',
    '2023-02-29',
    '2024-13-01',
    '2024-00-10',
    '0000-01-01T00:00:00Z',
    '2024-01-01T24:00:00Z',
    '2024-01-01T10:60:00Z',
    '2024-01-01T10:00:60Z',
    '2024-01-01T00:00:00+16:00',
    '2024-01-01T00:00:00+01:60',
    '2024-01-01T00:00',
    'yesterday',
  ])('datetime %j → 400', (value) => {
    expect(refusal({ closed_at: value }).code).toBe('invalid_value');
    expect(refusal({ closed_at: { $between: ['2024-01-01', value] } }).code).toBe('invalid_value');
  });

  it('a bare date means midnight UTC in SQL as in memory; date-times keep their offset', () => {
    expect(leafValue(parseWhere({ closed_at: '2024-02-29' }, resolver))).toBe('2024-02-29T00:00:00Z');
    expect(leafValue(parseWhere({ closed_at: '2000-02-29T23:59:59.123456+15:59' }, resolver))).toBe('2000-02-29T23:59:59.123456+15:59');
    expect(leafValue(parseWhere({ closed_at: '0001-01-01T00:00:00Z' }, resolver))).toBe('0001-01-01T00:00:00Z');
  });

  it('integers are bound as bigint, so a safe integer never overflows a narrower column', () => {
    const params = new SqlParams(0);
    const plan = compileWhereSql(parseWhere({ qty: 2 ** 40, $or: [{ version: { $in: [1, 2] } }, { version: { $gt: 3 } }] }, resolver), {
      params,
      column: (f) => `t."${f}"`,
    });
    expect(plan).toEqual(conditional('((t."qty" = $1::bigint) AND ((t."version" = ANY($2::bigint[])) OR (t."version" > $3::bigint)))'));
    expect(params.values).toEqual([2 ** 40, [1, 2], 3]);
    expect(refusal({ qty: 2 ** 53 }).code).toBe('invalid_value');
    expect(refusal({ qty: 1.5 }).code).toBe('invalid_value');
  });
});
