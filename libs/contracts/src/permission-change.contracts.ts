import { Type, type Static } from '@sinclair/typebox';
import { PermissionSetSchema, SharingRuleSchema } from '@custodian/policy';
import { defineRequest } from './contract';
import { OperationOutcomeFields, RequesterSchema } from './objects.contracts';

const Id = Type.String({ format: 'uuid' });
const ObjectName = Type.String({ pattern: '^[a-z][a-z0-9_]{0,27}$' });
/** A content hash of what a change was computed on (hex); the apply is `stale` when it differs. */
const Version = Type.String({ pattern: '^[0-9a-f]{16,64}$' });

/**
 * The policy library's PermissionSet without its `$id`: the same id is registered with the
 * validator through PrincipalSnapshotSchema, and Ajv refuses a second schema under one id.
 */
const { $id: _setId, ...permissionSetBody } = PermissionSetSchema;
const PermissionSetBody = permissionSetBody as typeof PermissionSetSchema;

/**
 * A proposed permission change (the `change` of a `permission.change` proposal), tagged by `type`.
 * Each is what one direct route does: `PUT /permission-sets/:id`, `POST|DELETE
 * /permission-sets/:id/assignments`, `PATCH /roles/:id` with a new parent, `POST|PUT
 * /meta/objects/:name/sharing-rules`.
 */
export const PermissionChangeSchema = Type.Union([
  Type.Object(
    { type: Type.Literal('permission_set.update'), permissionSetId: Id, body: PermissionSetBody },
    { additionalProperties: false },
  ),
  Type.Object({ type: Type.Literal('permission_set.assign'), permissionSetId: Id, userId: Id }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('permission_set.assign'), permissionSetId: Id, groupId: Id }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('permission_set.unassign'), permissionSetId: Id, userId: Id }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('permission_set.unassign'), permissionSetId: Id, groupId: Id }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('role.move'), roleId: Id, parentId: Type.Union([Id, Type.Null()]) }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('sharing_rule.upsert'), object: ObjectName, rule: SharingRuleSchema }, { additionalProperties: false }),
]);
export type PermissionChange = Static<typeof PermissionChangeSchema>;
export type PermissionChangeType = PermissionChange['type'];

/** The capability the direct route of each change needs: proposers must hold it, approvers too. */
export const PERMISSION_CHANGE_CAPABILITY: Record<PermissionChangeType, 'manage_permissions' | 'manage_roles' | 'manage_sharing'> = {
  'permission_set.update': 'manage_permissions',
  'permission_set.assign': 'manage_permissions',
  'permission_set.unassign': 'manage_permissions',
  'role.move': 'manage_roles',
  'sharing_rule.upsert': 'manage_sharing',
};

/** The pending action's `object` for a permission change: what it is filed under in the inbox. */
export function permissionChangeSubject(change: PermissionChange): string {
  if (change.type === 'sharing_rule.upsert') return change.object;
  return change.type === 'role.move' ? 'role' : 'permission_set';
}

const Access = Type.Object({ before: Type.Boolean(), after: Type.Boolean() }, { additionalProperties: false });
const Count = Type.Object({ before: Type.Integer({ minimum: 0 }), after: Type.Integer({ minimum: 0 }) }, { additionalProperties: false });
const Level = Type.Union([Type.Literal('none'), Type.Literal('read'), Type.Literal('edit')]);
const LevelChange = Type.Object({ before: Level, after: Level }, { additionalProperties: false });

/** One affected user's access to one object before and after the change. */
export const ObjectImpactSchema = Type.Object(
  {
    read: Access,
    edit: Access,
    delete: Access,
    /** Records the user can read / edit, counted with the row filter before and after in one snapshot. */
    records: Type.Object({ readable: Count, editable: Count }, { additionalProperties: false }),
    /** Fields whose level changes. */
    fields: Type.Record(Type.String({ maxLength: 64 }), LevelChange),
  },
  { additionalProperties: false },
);
export type ObjectImpact = Static<typeof ObjectImpactSchema>;

/** The blast radius of a permission change, as reviewers see it (capped; `truncated` says so). */
export const PermissionImpactSchema = Type.Object(
  {
    change: Type.Record(Type.String({ maxLength: 64 }), Type.Unknown()),
    /** What the change is about, named for reviewers (the set, role or rule). */
    target: Type.Record(Type.String({ maxLength: 64 }), Type.Unknown()),
    /** Users whose access changes, with only the objects where it does. */
    users: Type.Array(
      Type.Object(
        {
          userId: Id,
          email: Type.String({ maxLength: 320 }),
          objects: Type.Record(ObjectName, ObjectImpactSchema),
          /** More objects changed than the cap details. */
          objectsTruncated: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false },
      ),
      { maxItems: 1000 },
    ),
    totals: Type.Object(
      {
        /** Users the change can reach (holders of the set, the group, the role subtree, the rule's grantees). */
        usersInScope: Type.Integer({ minimum: 0 }),
        /** Of those, how many were computed in detail. */
        usersDetailed: Type.Integer({ minimum: 0 }),
        /** Of the detailed ones, how many gain or lose anything. */
        usersAffected: Type.Integer({ minimum: 0 }),
        /** Access that widens / narrows (a type-level action, a field level, a record count), summed over users and objects. */
        gains: Type.Integer({ minimum: 0 }),
        losses: Type.Integer({ minimum: 0 }),
      },
      { additionalProperties: false },
    ),
    truncated: Type.Boolean(),
    limits: Type.Object({ users: Type.Integer(), objects: Type.Integer() }, { additionalProperties: false }),
  },
  { additionalProperties: false },
);
export type PermissionImpact = Static<typeof PermissionImpactSchema>;

export const PermissionChangeResultSchema = Type.Object(
  {
    ...OperationOutcomeFields,
    /** The target's content hash the impact was computed on (dry-run) or that the apply checked. */
    version: Type.Optional(Version),
    impact: Type.Optional(PermissionImpactSchema),
  },
  { additionalProperties: false },
);
export type PermissionChangeResult = Static<typeof PermissionChangeResultSchema>;

/**
 * Objects computes a change's impact under the requester's permission now (the change's
 * capability; agents never hold these): the affected users' access before and after, record counts
 * from the row filters in one read-only snapshot. Nothing is changed.
 */
export const DryRunPermissionChange = defineRequest({
  subject: 'objects.permission-change.dry-run',
  service: 'objects',
  request: Type.Object({ requester: RequesterSchema, change: PermissionChangeSchema }, { additionalProperties: false }),
  response: PermissionChangeResultSchema,
  timeoutMs: 30_000,
});

const ApplyFields = {
  requester: RequesterSchema,
  change: PermissionChangeSchema,
  expectedVersion: Version,
  idempotencyKey: Type.String({ minLength: 1, maxLength: 200 }),
};

/** Identity applies an approved set or role change through its own code path, if the target is unchanged. */
export const ApplyIdentityPermissionChange = defineRequest({
  subject: 'identity.permission-change.apply',
  service: 'identity',
  request: Type.Object(ApplyFields, { additionalProperties: false }),
  response: PermissionChangeResultSchema,
  timeoutMs: 15_000,
});

/** Objects applies an approved sharing rule through its own code path, if the object's rules are unchanged. */
export const ApplySharingRuleChange = defineRequest({
  subject: 'objects.sharing-rule.apply',
  service: 'objects',
  request: Type.Object(ApplyFields, { additionalProperties: false }),
  response: PermissionChangeResultSchema,
  timeoutMs: 15_000,
});

/** A grantee whose members a sharing rule reaches. */
export const GranteeRefSchema = Type.Object(
  {
    type: Type.Union([Type.Literal('user'), Type.Literal('group'), Type.Literal('role'), Type.Literal('role_and_subordinates')]),
    id: Type.String({ minLength: 1, maxLength: 128 }),
  },
  { additionalProperties: false },
);

/** A user's policy snapshot in compact form: indexes into the answer's `sets`. */
const SubjectSnapshot = Type.Object(
  {
    roleId: Type.Union([Id, Type.Null()]),
    ancestorRoleIds: Type.Array(Id, { maxItems: 256 }),
    groupIds: Type.Array(Id, { maxItems: 10_000 }),
    sets: Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 1000 }),
  },
  { additionalProperties: false },
);

/**
 * Identity answers who a change reaches and their principal snapshots before and after it (the
 * change applied in memory; nothing is written), plus the target's version. Sharing rules change
 * no snapshot: identity lists the members of the rule's grantees (`grantees`).
 */
export const DescribePermissionChange = defineRequest({
  subject: 'identity.permission-change.describe',
  service: 'identity',
  request: Type.Object(
    {
      orgId: Id,
      change: PermissionChangeSchema,
      grantees: Type.Optional(Type.Array(GranteeRefSchema, { maxItems: 4 })),
      limit: Type.Integer({ minimum: 1, maximum: 1000 }),
    },
    { additionalProperties: false },
  ),
  response: Type.Object(
    {
      outcome: Type.Union([Type.Literal('ok'), Type.Literal('not_found'), Type.Literal('invalid'), Type.Literal('conflict')]),
      code: Type.Optional(Type.String({ maxLength: 64 })),
      message: Type.Optional(Type.String({ maxLength: 2000 })),
      version: Type.Optional(Version),
      target: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.Unknown())),
      policyVersion: Type.Integer({ minimum: 0 }),
      usersInScope: Type.Integer({ minimum: 0 }),
      /** Distinct permission-set bodies the users' snapshots point at. */
      sets: Type.Array(PermissionSetBody, { maxItems: 5000 }),
      users: Type.Array(
        Type.Object(
          { userId: Id, email: Type.String({ maxLength: 320 }), before: SubjectSnapshot, after: SubjectSnapshot },
          { additionalProperties: false },
        ),
        { maxItems: 1000 },
      ),
    },
    { additionalProperties: false },
  ),
  timeoutMs: 20_000,
});
export type DescribedPermissionChange = Static<typeof DescribePermissionChange.response>;
