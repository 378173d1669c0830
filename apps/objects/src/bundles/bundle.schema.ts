import { Type, type Static } from '@sinclair/typebox';
import { PermissionSetSchema, SharingRuleSchema } from '@custodian/policy';
import { ObjectDefinitionSchema } from '../metadata/object-definition.schema';

const Name = Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_ .-]{0,127}$' });

/**
 * The bundle document (DESIGN §6), JSON or YAML. Objects and sharing rules are applied by the
 * objects service; roles, groups and permission sets belong to identity and are applied by the
 * bundle CLI through identity's API (docs/objects.md); actions and approval policies are declared
 * for the services that will own them.
 */
export const BundleSchema = Type.Object(
  {
    apiVersion: Type.Literal('custodian.dev/v1'),
    kind: Type.Literal('Bundle'),
    name: Type.String({ minLength: 1, maxLength: 128 }),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
    objects: Type.Optional(Type.Array(ObjectDefinitionSchema, { maxItems: 200 })),
    /** Per object: the complete list of its sharing rules (grantee ids are identity ids). */
    sharingRules: Type.Optional(
      Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_]{0,27}$' }), Type.Array(SharingRuleSchema, { maxItems: 300 }), {
        maxProperties: 200,
      }),
    ),
    roles: Type.Optional(
      Type.Array(Type.Object({ name: Name, parent: Type.Optional(Name) }, { additionalProperties: false }), { maxItems: 1000 }),
    ),
    groups: Type.Optional(
      Type.Array(
        Type.Object({ name: Name, description: Type.Optional(Type.String({ maxLength: 1000 })) }, { additionalProperties: false }),
        { maxItems: 1000 },
      ),
    ),
    permissionSets: Type.Optional(Type.Array(PermissionSetSchema, { maxItems: 1000 })),
    actions: Type.Optional(Type.Array(Type.Record(Type.String({ maxLength: 64 }), Type.Unknown()), { maxItems: 1000 })),
    approvalPolicies: Type.Optional(Type.Array(Type.Record(Type.String({ maxLength: 64 }), Type.Unknown()), { maxItems: 1000 })),
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
