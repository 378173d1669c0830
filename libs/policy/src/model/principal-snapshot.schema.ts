import { Type, type Static } from '@sinclair/typebox';
import { NAME_PATTERN } from './safe-input';

/**
 * The principal snapshot: everything the decision needs about who is asking. Types and JSON
 * Schemas come from one TypeBox source; the schemas are published as part of the bundle format.
 */
const Name = Type.String({ pattern: NAME_PATTERN });
/** Ids of users, orgs, roles and groups are opaque strings (uuid or slug). */
export const IdSchema = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' });

export const SYSTEM_CAPABILITIES = [
  'manage_users',
  'manage_roles',
  'manage_permissions',
  'manage_metadata',
  'manage_sharing',
  'manage_settings',
  'manage_api_keys',
  'view_audit',
  'manage_audit',
  'approve_actions',
  'view_all_data',
  'modify_all_data',
] as const;
export const INTEGRATION_CAPABILITIES = ['api_access', 'agent_access', 'mcp_access'] as const;
export const AGENT_SCOPES = ['data:read', 'data:write', 'actions:execute', 'metadata:write'] as const;

export type SystemCapability = (typeof SYSTEM_CAPABILITIES)[number];
export type IntegrationCapability = (typeof INTEGRATION_CAPABILITIES)[number];
export type Capability = SystemCapability | IntegrationCapability;
export type AgentScope = (typeof AGENT_SCOPES)[number];

export const FieldLevelSchema = Type.Union([Type.Literal('none'), Type.Literal('read'), Type.Literal('edit')]);
export type FieldLevel = Static<typeof FieldLevelSchema>;

export const ObjectPermissionSchema = Type.Object(
  {
    allowRead: Type.Optional(Type.Boolean()),
    allowCreate: Type.Optional(Type.Boolean()),
    allowEdit: Type.Optional(Type.Boolean()),
    allowDelete: Type.Optional(Type.Boolean()),
    allowTransfer: Type.Optional(Type.Boolean()),
    viewAllRecords: Type.Optional(Type.Boolean()),
    modifyAllRecords: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type ObjectPermission = Static<typeof ObjectPermissionSchema>;

/** Field levels of one object: field name or "*" → level. */
export const FieldLevelsSchema = Type.Record(Type.String({ pattern: '^(\\*|[a-z][a-z0-9_]{0,62})$' }), FieldLevelSchema);

export const PermissionSetSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128 }),
    objects: Type.Optional(Type.Record(Name, ObjectPermissionSchema)),
    fields: Type.Optional(Type.Record(Name, FieldLevelsSchema)),
    systemCapabilities: Type.Optional(Type.Array(Type.Union(SYSTEM_CAPABILITIES.map((c) => Type.Literal(c))), { maxItems: 64 })),
    integrationCapabilities: Type.Optional(Type.Array(Type.Union(INTEGRATION_CAPABILITIES.map((c) => Type.Literal(c))), { maxItems: 16 })),
    /** Apps this set grants access to (R6). */
    apps: Type.Optional(Type.Array(Name, { maxItems: 1000 })),
  },
  { additionalProperties: false, $id: 'https://custodian.dev/schemas/permission-set.json' },
);
export type PermissionSet = Static<typeof PermissionSetSchema>;

export const AgentContextSchema = Type.Object(
  {
    clientId: IdSchema,
    name: Type.String({ minLength: 1, maxLength: 200 }),
    scopes: Type.Array(Type.Union(AGENT_SCOPES.map((s) => Type.Literal(s))), { maxItems: 8 }),
    /** When present, the agent may touch only these objects. */
    objects: Type.Optional(Type.Array(Name, { maxItems: 1000 })),
  },
  { additionalProperties: false },
);
export type AgentContext = Static<typeof AgentContextSchema>;

export const PrincipalSnapshotSchema = Type.Object(
  {
    userId: IdSchema,
    orgId: IdSchema,
    /** The user's role in this org, or null. */
    roleId: Type.Union([IdSchema, Type.Null()]),
    /** Proper ancestors of roleId, nearest first. */
    ancestorRoleIds: Type.Array(IdSchema, { maxItems: 256 }),
    groupIds: Type.Array(IdSchema, { maxItems: 10_000 }),
    policyVersion: Type.Integer({ minimum: 0 }),
    /** Every set assigned directly or through a group (R2: the union is what counts). */
    permissionSets: Type.Array(PermissionSetSchema, { maxItems: 1000 }),
    agent: Type.Optional(AgentContextSchema),
  },
  { additionalProperties: false, $id: 'https://custodian.dev/schemas/principal-snapshot.json' },
);
export type PrincipalSnapshot = Static<typeof PrincipalSnapshotSchema>;
