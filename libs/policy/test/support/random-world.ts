import fc from 'fast-check';
import type { ObjectPermission, PermissionSet, RecordShare, SharingRule } from '@custodian/policy';

/**
 * Random worlds for the differential tests: role trees, users, groups, permission sets, sharing
 * models and rules, explicit shares, and records full of NULL and missing values.
 */
export const ACCT_FIELDS = [
  { name: 'region', type: 'string' as const },
  { name: 'label', type: 'text' as const },
  { name: 'amount', type: 'number' as const },
  { name: 'score', type: 'integer' as const },
  { name: 'active', type: 'boolean' as const },
  { name: 'closed_at', type: 'datetime' as const },
  { name: 'secret', type: 'string' as const, sensitive: true },
];
export const ITEM_FIELDS = [
  { name: 'acct_id', type: 'master_detail' as const, reference: 'acct' },
  { name: 'region', type: 'string' as const },
  { name: 'qty', type: 'integer' as const },
];

export const STRINGS = ['west', 'West', 'east', '', 'wést', 'we', "O'Brien", '50%_off', 'a\\b', '𝒜x', 'z'];
export const NUMBERS = [-1, 0, 0.5, 1, 2.25, 100];
export const INTEGERS = [-3, 0, 1, 2, 7];
export const DATES = ['2024-01-01T00:00:00.000Z', '2024-03-01T12:30:00.000Z', '2024-03-01T12:30:00.001Z', '2025-12-31T23:59:59.999Z'];

const NROLES = 6;
const NUSERS = 6;
const NGROUPS = 3;
const roleId = fc.integer({ min: 0, max: NROLES - 1 }).map((i) => `r${i}`);
const userId = fc.integer({ min: 0, max: NUSERS - 1 }).map((i) => `u${i}`);
const groupId = fc.integer({ min: 0, max: NGROUPS - 1 }).map((i) => `g${i}`);

const grantee = fc.oneof(
  fc.record({ type: fc.constant('user' as const), id: fc.oneof(userId, fc.constant('nobody')) }),
  fc.record({ type: fc.constant('group' as const), id: groupId }),
  fc.record({ type: fc.constant('role' as const), id: roleId }),
  fc.record({ type: fc.constant('role_and_subordinates' as const), id: roleId }),
);
const shareLevel = fc.constantFrom('read' as const, 'edit' as const);

function fieldValue(type: string): fc.Arbitrary<unknown> {
  switch (type) {
    case 'number':
      return fc.constantFrom(...NUMBERS);
    case 'integer':
      return fc.constantFrom(...INTEGERS);
    case 'boolean':
      return fc.boolean();
    case 'datetime':
      return fc.constantFrom(...DATES);
    default:
      return fc.constantFrom(...STRINGS);
  }
}

type Field = { name: string; type: string };

/** A random ObjectQL where over `fields` — every operator, nulls, empty lists, nesting. */
export function whereArb(fields: readonly Field[], maxDepth = 3): fc.Arbitrary<Record<string, unknown>> {
  const leaf: fc.Arbitrary<Record<string, unknown>> = fc.constantFrom(...fields).chain((f) => {
    const v = fieldValue(f.type);
    const vOrNull = fc.oneof({ weight: 4, arbitrary: v }, { weight: 1, arbitrary: fc.constant(null) });
    const list = fc.array(vOrNull, { maxLength: 3 });
    const ops: fc.Arbitrary<unknown>[] = [
      vOrNull,
      vOrNull.map((x) => ({ $eq: x })),
      vOrNull.map((x) => ({ $ne: x })),
      list.map((x) => ({ $in: x })),
      list.map((x) => ({ $nin: x })),
      fc.boolean().map((x) => ({ $null: x })),
      fc.boolean().map((x) => ({ $exists: x })),
    ];
    const ordered = f.type !== 'boolean' && f.type !== 'master_detail' && f.type !== 'lookup';
    if (ordered) {
      ops.push(
        fc.tuple(fc.constantFrom('$gt', '$gte', '$lt', '$lte'), v).map(([op, x]) => ({ [op]: x })),
        fc.tuple(v, v).map(([a, b]) => ({ $between: [a, b] })),
        fc.tuple(fc.constantFrom('$gt', '$lt'), v).map(([op, x]) => ({ $not: { [op]: x } })),
      );
    }
    if (f.type === 'string' || f.type === 'text') {
      ops.push(
        fc
          .tuple(fc.constantFrom('$contains', '$startsWith', '$endsWith'), fc.constantFrom(...STRINGS, 'es', 'st', 'W'))
          .map(([op, x]) => ({ [op]: x })),
      );
    }
    return fc.oneof(...ops).map((spec) => ({ [f.name]: spec }));
  });
  const tree = fc.letrec<{ node: Record<string, unknown> }>((tie) => ({
    node: fc.oneof(
      { depthSize: 'small', maxDepth, withCrossShrink: true },
      leaf,
      fc.array(tie('node'), { minLength: 1, maxLength: 3 }).map((xs) => ({ $and: xs })),
      fc.array(tie('node'), { minLength: 1, maxLength: 3 }).map((xs) => ({ $or: xs })),
      tie('node').map((x) => ({ $not: x })),
    ),
  }));
  return tree.node;
}

/** A record with some fields missing, some null, some set. */
function rowArb(fields: readonly Field[], extra: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<Record<string, unknown>> {
  const entries = fields.map((f) =>
    fc.oneof(
      { weight: 1, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.constant(null) },
      { weight: 4, arbitrary: fieldValue(f.type) },
    ),
  );
  return fc.tuple(extra, ...entries).map(([base, ...values]) => {
    const row: Record<string, unknown> = { ...base };
    fields.forEach((f, i) => {
      if (values[i] !== undefined) row[f.name] = values[i];
    });
    return row;
  });
}

const objectPermission: fc.Arbitrary<ObjectPermission> = fc.record(
  {
    allowRead: fc.boolean(),
    allowCreate: fc.boolean(),
    allowEdit: fc.boolean(),
    allowDelete: fc.boolean(),
    allowTransfer: fc.boolean(),
    viewAllRecords: fc.integer({ min: 0, max: 9 }).map((n) => n < 2),
    modifyAllRecords: fc.integer({ min: 0, max: 9 }).map((n) => n < 1),
  },
  { requiredKeys: [] },
);

const permissionSet = (name: string): fc.Arbitrary<PermissionSet> =>
  fc
    .record({
      objects: fc.record({ acct: objectPermission, item: objectPermission }, { requiredKeys: [] }),
      systemCapabilities: fc.oneof(
        { weight: 8, arbitrary: fc.subarray(['manage_sharing'] as const) },
        { weight: 1, arbitrary: fc.subarray(['view_all_data', 'modify_all_data', 'manage_sharing'] as const) },
      ),
    })
    .map((s) => ({ name, ...s }));

function rulesArb(fields: readonly Field[]): fc.Arbitrary<SharingRule[]> {
  const criteria = fc.record({
    type: fc.constant('criteria' as const),
    criteria: whereArb(fields, 2),
    sharedWith: grantee,
    accessLevel: shareLevel,
  });
  const owner = fc.record({
    type: fc.constant('owner' as const),
    ownedBy: fc.oneof(
      fc.record({ type: fc.constant('group' as const), id: groupId }),
      fc.record({ type: fc.constant('role' as const), id: roleId }),
      fc.record({ type: fc.constant('role_and_subordinates' as const), id: roleId }),
    ),
    sharedWith: grantee,
    accessLevel: shareLevel,
  });
  return fc
    .array(fc.oneof(criteria, owner), { maxLength: 4 })
    .map((rules) => rules.map((r, i) => ({ name: `rule ${i}`, ...r }) as SharingRule));
}

export interface RandomWorld {
  roleParents: Record<string, string | null>;
  userRoles: Record<string, string>;
  groupMembers: Record<string, string[]>;
  acct: { sharingModel: 'private' | 'public_read' | 'public_read_write'; hierarchy: boolean; rules: SharingRule[] };
  item: {
    sharingModel: 'private' | 'public_read' | 'public_read_write' | 'controlled_by_parent';
    hierarchy: boolean;
    rules: SharingRule[];
  };
  principals: { userId: string; sets: PermissionSet[]; agentScopes: ('data:read' | 'data:write')[] | null }[];
  /** Records without ids/org: ids and org are assigned per run so that runs never collide. */
  accts: { row: Record<string, unknown>; foreign: boolean }[];
  items: { row: Record<string, unknown>; parent: number | null; foreign: boolean }[];
  shares: {
    object: 'acct' | 'item';
    index: number;
    grantee: { type: RecordShare['granteeType']; id: string };
    accessLevel: 'read' | 'edit';
  }[];
  where: Record<string, unknown>;
}

const owner = fc.oneof(
  { weight: 6, arbitrary: userId },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constant('ghost') },
);

export const randomWorld: fc.Arbitrary<RandomWorld> = fc.record({
  roleParents: fc
    .array(fc.option(fc.nat(), { nil: null }), { minLength: NROLES, maxLength: NROLES })
    .map((parents) => Object.fromEntries(parents.map((p, i) => [`r${i}`, i === 0 || p === null ? null : `r${p % i}`]))),
  userRoles: fc
    .array(fc.option(roleId, { nil: null }), { minLength: NUSERS, maxLength: NUSERS })
    .map((roles) => Object.fromEntries(roles.flatMap((r, i) => (r === null ? [] : [[`u${i}`, r]])))),
  groupMembers: fc
    .array(fc.subarray(Array.from({ length: NUSERS }, (_, i) => `u${i}`)), { minLength: NGROUPS, maxLength: NGROUPS })
    .map((gs) => Object.fromEntries(gs.map((members, i) => [`g${i}`, members]))),
  acct: fc.record({
    sharingModel: fc.constantFrom('private' as const, 'public_read' as const, 'public_read_write' as const),
    hierarchy: fc.boolean(),
    rules: rulesArb(ACCT_FIELDS),
  }),
  item: fc.record({
    sharingModel: fc.constantFrom(
      'private' as const,
      'public_read' as const,
      'public_read_write' as const,
      'controlled_by_parent' as const,
    ),
    hierarchy: fc.boolean(),
    rules: rulesArb(ITEM_FIELDS.filter((f) => f.type !== 'master_detail')),
  }),
  principals: fc.array(
    fc.record({
      userId,
      sets: fc.tuple(permissionSet('set a'), permissionSet('set b')).chain(([a, b]) => fc.subarray([a, b], { minLength: 1 })),
      agentScopes: fc.option(fc.subarray(['data:read', 'data:write'] as const), { nil: null, freq: 4 }),
    }),
    { minLength: 1, maxLength: 3 },
  ),
  accts: fc.array(
    fc.record({ row: rowArb(ACCT_FIELDS, fc.record({ owner_id: owner })), foreign: fc.integer({ min: 0, max: 9 }).map((n) => n < 2) }),
    { maxLength: 10 },
  ),
  items: fc.array(
    fc.record({
      row: rowArb(
        ITEM_FIELDS.filter((f) => f.type !== 'master_detail'),
        fc.record({ owner_id: owner }),
      ),
      parent: fc.option(fc.nat({ max: 12 }), { nil: null }),
      foreign: fc.integer({ min: 0, max: 9 }).map((n) => n < 2),
    }),
    { maxLength: 8 },
  ),
  shares: fc.array(
    fc.record({ object: fc.constantFrom('acct' as const, 'item' as const), index: fc.nat({ max: 10 }), grantee, accessLevel: shareLevel }),
    { maxLength: 10 },
  ),
  where: whereArb(ACCT_FIELDS),
});
