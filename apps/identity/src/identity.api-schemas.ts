import { Type } from '@sinclair/typebox';
import { AnyObject, DateTime, Nullable, CursorPage, Uuid } from '@custodian/platform';

/**
 * The answers of identity's routes, for the OpenAPI document (`@ApiContract`, docs/api.md). Open
 * objects (extra properties allowed) so an added field is not a breaking change for clients.
 */
export const TokenAnswer = Type.Object(
  {
    tokenType: Type.Literal('Bearer'),
    accessToken: Type.String(),
    expiresIn: Type.Integer(),
    refreshToken: Type.Optional(Type.String({ description: 'absent when session is "cookie"' })),
    orgId: Uuid,
  },
  { additionalProperties: true },
);
export const TokenExchangeAnswer = Type.Object(
  {
    access_token: Type.String(),
    issued_token_type: Type.String(),
    token_type: Type.Literal('Bearer'),
    expires_in: Type.Integer(),
    scope: Type.String(),
  },
  { additionalProperties: true },
);
export const Member = Type.Object(
  {
    id: Uuid,
    email: Type.String(),
    displayName: Type.String(),
    active: Type.Boolean(),
    roleId: Nullable(Uuid),
    capabilities: Type.Array(Type.String()),
    joinedAt: DateTime,
  },
  { additionalProperties: true },
);
export const Invitation = Type.Object(
  {
    id: Uuid,
    status: Type.Literal('invited'),
    orgId: Uuid,
    email: Type.String(),
    roleId: Nullable(Uuid),
    capabilities: Type.Array(Type.String()),
    createdAt: DateTime,
    expiresAt: DateTime,
  },
  { additionalProperties: true },
);
export const MyInvitation = Type.Object(
  { id: Uuid, orgId: Uuid, orgName: Type.String(), capabilities: Type.Array(Type.String()), createdAt: DateTime, expiresAt: DateTime },
  { additionalProperties: true },
);
export const Joined = Type.Object(
  { orgId: Uuid, orgName: Type.String(), roleId: Nullable(Uuid), capabilities: Type.Array(Type.String()), joinedAt: DateTime },
  { additionalProperties: true },
);
export const Org = Type.Object(
  { id: Uuid, name: Type.String(), policyVersion: Type.Integer(), createdAt: DateTime },
  { additionalProperties: true },
);
export const Role = Type.Object(
  { id: Uuid, name: Type.String(), parentId: Nullable(Uuid), createdAt: DateTime, updatedAt: DateTime },
  { additionalProperties: true },
);
export const Group = Type.Object(
  { id: Uuid, name: Type.String(), description: Type.String(), createdAt: DateTime, updatedAt: DateTime },
  { additionalProperties: true },
);
export const GroupMember = Type.Object(
  { groupId: Uuid, userId: Uuid, email: Type.String(), displayName: Type.String(), addedAt: DateTime },
  { additionalProperties: true },
);
export const PermissionSetAnswer = Type.Object(
  { id: Uuid, name: Type.String(), body: AnyObject, createdAt: DateTime, updatedAt: DateTime },
  { additionalProperties: true },
);
export const Assignment = Type.Object(
  { id: Uuid, permissionSetId: Uuid, userId: Nullable(Uuid), groupId: Nullable(Uuid), createdAt: DateTime },
  { additionalProperties: true },
);
export const ApiKey = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    prefix: Type.String(),
    userId: Uuid,
    scopes: Type.Array(Type.String()),
    expiresAt: Nullable(DateTime),
    lastUsedAt: Nullable(DateTime),
    revokedAt: Nullable(DateTime),
    createdAt: DateTime,
  },
  { additionalProperties: true },
);
export const ApiKeyCreated = Type.Intersect([ApiKey, Type.Object({ key: Type.String({ description: 'shown once, never again' }) })]);
export const Session = Type.Object(
  { id: Uuid, orgId: Uuid, createdAt: DateTime, expiresAt: DateTime, current: Type.Boolean() },
  { additionalProperties: true },
);
export const SigningKey = Type.Object(
  {
    kid: Type.String(),
    alg: Type.String(),
    active: Type.Boolean(),
    signing: Type.Boolean(),
    activatesAt: Nullable(DateTime),
    createdAt: DateTime,
    retiredAt: Nullable(DateTime),
  },
  { additionalProperties: true },
);
/** An unpaged list in the one list envelope (ADR 0018): `nextCursor` is always null. */
export const Items = <T extends Parameters<typeof Type.Array>[0]>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Type.Null() }, { additionalProperties: true });
export { CursorPage };
