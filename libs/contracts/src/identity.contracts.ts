import { Type, type Static } from '@sinclair/typebox';
import { AgentContextSchema, PermissionSetSchema } from '@custodian/policy';
import { defineEvent, defineRequest } from './contract';

const Id = Type.String({ format: 'uuid' });

/**
 * What every decision point needs to know about the caller. The policy part (roleId,
 * ancestorRoleIds, groupIds, policyVersion, permissionSets, agent) has exactly the shape of
 * `@custodian/policy`'s PrincipalSnapshot, so a service hands `policySnapshot(principal)` straight to
 * the decision library. `capabilities` is the union of the membership's direct capabilities and the
 * system/integration capabilities of every set, narrowed for API keys and delegated tokens.
 */
export const PrincipalSnapshotSchema = Type.Object(
  {
    userId: Id,
    orgId: Id,
    email: Type.String({ maxLength: 320 }),
    sessionId: Type.Optional(Id),
    apiKeyId: Type.Optional(Id),
    capabilities: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 64 }),
    roleId: Type.Union([Id, Type.Null()]),
    /** Proper ancestors of roleId, nearest first. */
    ancestorRoleIds: Type.Array(Id, { maxItems: 256 }),
    groupIds: Type.Array(Id, { maxItems: 10_000 }),
    policyVersion: Type.Integer({ minimum: 0 }),
    /** Every set assigned directly or through a group, plus one synthetic set for direct membership capabilities. */
    permissionSets: Type.Array(PermissionSetSchema, { maxItems: 1000 }),
    /** Present on delegated (agent) tokens: the agent and the scopes it was granted (R7). */
    agent: Type.Optional(AgentContextSchema),
    /** API key scopes, when the caller authenticated with an API key. */
    apiKeyScopes: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32 })),
    /**
     * When the credential behind this snapshot stops working by itself (the session's or API key's
     * expiry), if it does: a cached snapshot is never used past it.
     */
    credentialExpiresAt: Type.Optional(Type.String({ format: 'date-time', maxLength: 40 })),
  },
  { additionalProperties: false },
);
export type PrincipalSnapshot = Static<typeof PrincipalSnapshotSchema>;

/** The part of a snapshot the policy library decides on (its PrincipalSnapshot shape). */
export function policySnapshot(p: PrincipalSnapshot): {
  userId: string;
  orgId: string;
  roleId: string | null;
  ancestorRoleIds: string[];
  groupIds: string[];
  policyVersion: number;
  permissionSets: PrincipalSnapshot['permissionSets'];
  agent?: PrincipalSnapshot['agent'];
} {
  return {
    userId: p.userId,
    orgId: p.orgId,
    roleId: p.roleId,
    ancestorRoleIds: p.ancestorRoleIds,
    groupIds: p.groupIds,
    policyVersion: p.policyVersion,
    permissionSets: p.permissionSets,
    ...(p.agent ? { agent: p.agent } : {}),
  };
}

/** Agent delegation carried by a delegated access token (`act` claim + `scope`). */
export const DelegationSchema = Type.Object(
  {
    clientId: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' }),
    name: Type.String({ minLength: 1, maxLength: 200 }),
    scopes: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 8 }),
  },
  { additionalProperties: false },
);

/** objects/approvals/... ask identity who the caller is; identity also checks the session/key is live. */
export const GetPrincipalSnapshot = defineRequest({
  subject: 'identity.principal.snapshot',
  service: 'identity',
  request: Type.Object(
    { userId: Id, orgId: Id, sessionId: Type.Optional(Id), apiKeyId: Type.Optional(Id), delegation: Type.Optional(DelegationSchema) },
    { additionalProperties: false },
  ),
  response: PrincipalSnapshotSchema,
});

/**
 * Whether an id names a member, group or role of one org (a share's grantee, say). Identity answers
 * from its own tables, so an id created a moment ago is found; a missing id and one of another org
 * answer the same `false`.
 */
export const FindDirectoryEntry = defineRequest({
  subject: 'identity.directory.exists',
  service: 'identity',
  request: Type.Object(
    { orgId: Id, type: Type.Union([Type.Literal('user'), Type.Literal('group'), Type.Literal('role')]), id: Id },
    { additionalProperties: false },
  ),
  response: Type.Object({ exists: Type.Boolean() }, { additionalProperties: false }),
});

/**
 * API keys are verified by identity (only it holds the keyed hashes); the answer is the key's
 * principal. Unknown prefix, wrong secret, revoked and expired keys answer the same `unauthenticated`.
 */
export const AuthenticateApiKey = defineRequest({
  subject: 'identity.api-key.authenticate',
  service: 'identity',
  request: Type.Object({ key: Type.String({ minLength: 1, maxLength: 256 }) }, { additionalProperties: false }),
  response: PrincipalSnapshotSchema,
});

export const JwkSchema = Type.Object(
  {
    kty: Type.String({ maxLength: 16 }),
    crv: Type.Optional(Type.String({ maxLength: 16 })),
    x: Type.Optional(Type.String({ maxLength: 512 })),
    kid: Type.String({ maxLength: 64 }),
    alg: Type.String({ maxLength: 16 }),
    use: Type.Optional(Type.Literal('sig')),
  },
  { additionalProperties: false },
);
export const JwksSchema = Type.Object({ keys: Type.Array(JwkSchema, { maxItems: 32 }) }, { additionalProperties: false });
export type Jwks = Static<typeof JwksSchema>;

/** The public signing keys; every service verifies access tokens locally with them. */
export const GetJwks = defineRequest({
  subject: 'identity.jwks.get',
  service: 'identity',
  request: Type.Object({}, { additionalProperties: false }),
  response: JwksSchema,
});

/** Published after every change that can alter a decision (R10). */
export const PolicyVersionChanged = defineEvent({
  subject: 'evt.identity.policy-version',
  payload: Type.Object(
    {
      orgId: Id,
      policyVersion: Type.Integer({ minimum: 0 }),
      reason: Type.String({ maxLength: 64 }),
      /**
       * Whether the same change also recorded a DirectoryChanged event at this version (exact, set by
       * identity per change). Absent on events written before the field existed.
       */
      directoryChange: Type.Optional(Type.Boolean()),
    },
    { additionalProperties: false },
  ),
});

/**
 * One change to the directory other services replicate (user→role, group membership, role tree).
 * `seq` increases by one per event and per org, so a replica can detect a gap; applying every event
 * of an org in `seq` order rebuilds the same directory.
 */
export const DirectoryChangeSchema = Type.Union([
  Type.Object({ kind: Type.Literal('user_role'), userId: Id, roleId: Type.Union([Id, Type.Null()]) }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal('member_removed'), userId: Id }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal('group_member_added'), groupId: Id, userId: Id }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal('group_member_removed'), groupId: Id, userId: Id }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal('group_deleted'), groupId: Id }, { additionalProperties: false }),
  Type.Object(
    { kind: Type.Literal('role_upserted'), roleId: Id, parentId: Type.Union([Id, Type.Null()]) },
    { additionalProperties: false },
  ),
  Type.Object({ kind: Type.Literal('role_deleted'), roleId: Id }, { additionalProperties: false }),
]);
export type DirectoryChange = Static<typeof DirectoryChangeSchema>;

export const DirectoryChanged = defineEvent({
  subject: 'evt.identity.directory',
  payload: Type.Object(
    {
      eventId: Id,
      orgId: Id,
      seq: Type.Integer({ minimum: 1 }),
      policyVersion: Type.Integer({ minimum: 0 }),
      change: DirectoryChangeSchema,
    },
    { additionalProperties: false },
  ),
});
export type DirectoryChangedEvent = Static<typeof DirectoryChanged.payload>;

/** A credential stopped working: caches keyed by it must drop their entries (R10). */
export const CredentialRevoked = defineEvent({
  subject: 'evt.identity.revoked',
  payload: Type.Object(
    {
      eventId: Id,
      orgId: Type.Union([Id, Type.Null()]),
      kind: Type.Union([Type.Literal('session'), Type.Literal('api_key'), Type.Literal('user')]),
      /** Session ids (a whole refresh family), an API key id, or a user id. */
      ids: Type.Array(Id, { minItems: 1, maxItems: 10_000 }),
      reason: Type.String({ maxLength: 64 }),
    },
    { additionalProperties: false },
  ),
});
export type CredentialRevokedEvent = Static<typeof CredentialRevoked.payload>;
