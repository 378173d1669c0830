import { Type, type Static } from '@sinclair/typebox';
import { NAME_PATTERN } from './safe-input';
import { IdSchema } from './principal-snapshot.schema';

const Name = Type.String({ pattern: NAME_PATTERN });

export const FIELD_TYPES = ['string', 'text', 'integer', 'number', 'boolean', 'datetime', 'lookup', 'master_detail'] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

export const FieldSecuritySchema = Type.Object(
  {
    name: Name,
    type: Type.Union(FIELD_TYPES.map((t) => Type.Literal(t))),
    /** Sensitive fields are hidden unless a permission set names them explicitly (R5). */
    sensitive: Type.Optional(Type.Boolean()),
    /** Target object of a lookup / master_detail field. */
    reference: Type.Optional(Name),
  },
  { additionalProperties: false },
);
export type FieldSecurity = Static<typeof FieldSecuritySchema>;

export const SharingModelSchema = Type.Union([
  Type.Literal('private'),
  Type.Literal('public_read'),
  Type.Literal('public_read_write'),
  Type.Literal('controlled_by_parent'),
]);
export type SharingModel = Static<typeof SharingModelSchema>;

export const ShareGranteeTypeSchema = Type.Union([
  Type.Literal('user'),
  Type.Literal('group'),
  Type.Literal('role'),
  Type.Literal('role_and_subordinates'),
]);
export type ShareGranteeType = Static<typeof ShareGranteeTypeSchema>;

export const GranteeSchema = Type.Object({ type: ShareGranteeTypeSchema, id: IdSchema }, { additionalProperties: false });
export type Grantee = Static<typeof GranteeSchema>;

export const ShareLevelSchema = Type.Union([Type.Literal('read'), Type.Literal('edit')]);
export type ShareLevel = Static<typeof ShareLevelSchema>;

const RuleName = Type.String({ minLength: 1, maxLength: 128 });

export const CriteriaSharingRuleSchema = Type.Object(
  {
    name: RuleName,
    type: Type.Literal('criteria'),
    /** An ObjectQL `where` over the object's own fields. */
    criteria: Type.Record(Type.String(), Type.Unknown()),
    sharedWith: GranteeSchema,
    accessLevel: ShareLevelSchema,
  },
  { additionalProperties: false },
);

export const OwnerSharingRuleSchema = Type.Object(
  {
    name: RuleName,
    type: Type.Literal('owner'),
    /** Records owned by members of this group / role / role and its subordinates. */
    ownedBy: Type.Object(
      {
        type: Type.Union([Type.Literal('group'), Type.Literal('role'), Type.Literal('role_and_subordinates')]),
        id: IdSchema,
      },
      { additionalProperties: false },
    ),
    sharedWith: GranteeSchema,
    accessLevel: ShareLevelSchema,
  },
  { additionalProperties: false },
);

export const SharingRuleSchema = Type.Union([CriteriaSharingRuleSchema, OwnerSharingRuleSchema]);
export type CriteriaSharingRule = Static<typeof CriteriaSharingRuleSchema>;
export type OwnerSharingRule = Static<typeof OwnerSharingRuleSchema>;
export type SharingRule = Static<typeof SharingRuleSchema>;

export const ObjectSecuritySchema = Type.Object(
  {
    name: Name,
    /** The app the object belongs to; without access to it the object does not exist (R6). */
    app: Type.Optional(Name),
    fields: Type.Array(FieldSecuritySchema, { maxItems: 1000 }),
    sharingModel: SharingModelSchema,
    /** For controlled_by_parent: the master_detail field pointing at the master record. */
    masterDetailField: Type.Optional(Name),
    /** Default true (R4c). */
    grantAccessUsingHierarchy: Type.Optional(Type.Boolean({ default: true })),
    sharingRules: Type.Optional(Type.Array(SharingRuleSchema, { maxItems: 20_000 })),
  },
  { additionalProperties: false, $id: 'https://custodian.dev/schemas/object-security.json' },
);
export type ObjectSecurity = Static<typeof ObjectSecuritySchema>;

/** An explicit share of one record (R4e), as stored in the share table. */
export const RecordShareSchema = Type.Object(
  {
    object: Name,
    recordId: IdSchema,
    granteeType: ShareGranteeTypeSchema,
    granteeId: IdSchema,
    accessLevel: ShareLevelSchema,
  },
  { additionalProperties: false, $id: 'https://custodian.dev/schemas/record-share.json' },
);
export type RecordShare = Static<typeof RecordShareSchema>;
