import { Type, type Static } from '@sinclair/typebox';
import { ApprovalPolicySchema, BundleGroupSchema, BundleItemNameSchema, BundleRoleSchema } from '@custodian/contracts';
import { PermissionSetSchema } from '@custodian/policy';
import { ActionDefinitionSchema } from '../actions/action.schema';
import { ObjectDefinitionSchema } from '../metadata/object-definition.schema';

const Id = Type.String({ format: 'uuid' });
const RuleName = Type.String({ minLength: 1, maxLength: 128 });
const AccessLevel = Type.Union([Type.Literal('read'), Type.Literal('edit')]);
const DirectoryType = Type.Union([Type.Literal('group'), Type.Literal('role'), Type.Literal('role_and_subordinates')]);

/** A group or role named in the bundle (or already in the org): resolved to its id by identity's answer. */
const NamedGrantee = Type.Object({ type: DirectoryType, name: BundleItemNameSchema }, { additionalProperties: false });
const Grantee = Type.Union([
  Type.Object(
    {
      type: Type.Union([Type.Literal('user'), Type.Literal('group'), Type.Literal('role'), Type.Literal('role_and_subordinates')]),
      id: Id,
    },
    { additionalProperties: false },
  ),
  NamedGrantee,
]);

/** The policy library's sharing rules, with grantees given by id or by name. */
export const BundleSharingRuleSchema = Type.Union([
  Type.Object(
    {
      name: RuleName,
      type: Type.Literal('criteria'),
      criteria: Type.Record(Type.String(), Type.Unknown()),
      sharedWith: Grantee,
      accessLevel: AccessLevel,
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      name: RuleName,
      type: Type.Literal('owner'),
      ownedBy: Type.Union([Type.Object({ type: DirectoryType, id: Id }, { additionalProperties: false }), NamedGrantee]),
      sharedWith: Grantee,
      accessLevel: AccessLevel,
    },
    { additionalProperties: false },
  ),
]);
export type BundleSharingRule = Static<typeof BundleSharingRuleSchema>;

/**
 * The bundle document (docs/objects.md, "Bundles"), JSON or YAML. `POST bundles/apply` applies every
 * section: roles, groups and permission sets through identity, objects, sharing rules and actions in the
 * objects service, approval policies through approvals (docs/objects.md).
 */
export const BundleSchema = Type.Object(
  {
    apiVersion: Type.Literal('custodian.dev/v1'),
    kind: Type.Literal('Bundle'),
    name: Type.String({ minLength: 1, maxLength: 128 }),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
    objects: Type.Optional(Type.Array(ObjectDefinitionSchema, { maxItems: 200 })),
    /** Per object: the complete list of its sharing rules; grantees by id or `{type, name}`. */
    sharingRules: Type.Optional(
      Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_]{0,27}$' }), Type.Array(BundleSharingRuleSchema, { maxItems: 300 }), {
        maxProperties: 200,
      }),
    ),
    roles: Type.Optional(Type.Array(BundleRoleSchema, { maxItems: 1000 })),
    groups: Type.Optional(Type.Array(BundleGroupSchema, { maxItems: 1000 })),
    permissionSets: Type.Optional(Type.Array(PermissionSetSchema, { maxItems: 1000 })),
    actions: Type.Optional(Type.Array(ActionDefinitionSchema, { maxItems: 1000 })),
    approvalPolicies: Type.Optional(Type.Array(ApprovalPolicySchema, { maxItems: 1000 })),
  },
  { additionalProperties: false, $id: 'https://custodian.dev/schemas/bundle.json' },
);
export type Bundle = Static<typeof BundleSchema>;

export const ApplyBundleRequestSchema = Type.Object(
  {
    /** The bundle as a JSON value … */
    bundle: Type.Optional(Type.Unknown()),
    /** … or as YAML/JSON text. */
    document: Type.Optional(Type.String({ maxLength: 1_000_000 })),
    dryRun: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
