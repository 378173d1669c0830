import { Type } from '@sinclair/typebox';
import { INTEGRATION_CAPABILITIES, PermissionSetSchema, SYSTEM_CAPABILITIES } from '@custodian/policy';

const Id = Type.String({ format: 'uuid' });
const Name = Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\u0000-\\u001f\\u007f]+$' });
const Capability = Type.Union([...SYSTEM_CAPABILITIES, ...INTEGRATION_CAPABILITIES].map((c) => Type.Literal(c)));
export const Password = Type.String({ minLength: 12, maxLength: 256 });
const Email = Type.String({ minLength: 3, maxLength: 320, pattern: '^[^\\s@]{1,64}@[^\\s@]{1,255}$' });

export const CreateUserSchema = Type.Object(
  {
    email: Email,
    displayName: Name,
    password: Password,
    roleId: Type.Optional(Type.Union([Id, Type.Null()])),
  },
  { additionalProperties: false },
);

export const UpdateUserSchema = Type.Object(
  {
    displayName: Type.Optional(Name),
    active: Type.Optional(Type.Boolean()),
    roleId: Type.Optional(Type.Union([Id, Type.Null()])),
    password: Type.Optional(Password),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const ChangeOwnPasswordSchema = Type.Object(
  { currentPassword: Type.String({ minLength: 1, maxLength: 256 }), newPassword: Password },
  { additionalProperties: false },
);

export const CreateOrgSchema = Type.Object({ name: Name }, { additionalProperties: false });
export const UpdateOrgSchema = Type.Object({ name: Name }, { additionalProperties: false });

export const AddMemberSchema = Type.Object(
  {
    email: Email,
    roleId: Type.Optional(Type.Union([Id, Type.Null()])),
    capabilities: Type.Optional(Type.Array(Capability, { maxItems: 16, uniqueItems: true })),
  },
  { additionalProperties: false },
);

export const UpdateMemberSchema = Type.Object(
  {
    roleId: Type.Optional(Type.Union([Id, Type.Null()])),
    capabilities: Type.Optional(Type.Array(Capability, { maxItems: 16, uniqueItems: true })),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const CreateRoleSchema = Type.Object(
  { name: Name, parentId: Type.Optional(Type.Union([Id, Type.Null()])) },
  { additionalProperties: false },
);
export const UpdateRoleSchema = Type.Object(
  { name: Type.Optional(Name), parentId: Type.Optional(Type.Union([Id, Type.Null()])) },
  { additionalProperties: false, minProperties: 1 },
);

export const CreateGroupSchema = Type.Object(
  { name: Name, description: Type.Optional(Type.String({ maxLength: 1000 })) },
  { additionalProperties: false },
);
export const UpdateGroupSchema = Type.Object(
  { name: Type.Optional(Name), description: Type.Optional(Type.String({ maxLength: 1000 })) },
  { additionalProperties: false, minProperties: 1 },
);
export const AddGroupMemberSchema = Type.Object({ userId: Id }, { additionalProperties: false });

/**
 * The body of a permission set is exactly the policy library's PermissionSet. The copy drops the
 * `$id`: the same id is already registered with the validator through PrincipalSnapshotSchema,
 * and Ajv refuses to compile a second top-level schema under one id.
 */
const { $id: _publishedId, ...permissionSetBody } = PermissionSetSchema;
export const PermissionSetBodySchema = permissionSetBody as typeof PermissionSetSchema;
export const CreateAssignmentSchema = Type.Union([
  Type.Object({ userId: Id }, { additionalProperties: false }),
  Type.Object({ groupId: Id }, { additionalProperties: false }),
]);
