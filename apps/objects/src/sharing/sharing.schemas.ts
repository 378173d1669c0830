import { Type, type Static } from '@sinclair/typebox';
import { SharingRuleSchema } from '@custodian/policy';

const Id = Type.String({ format: 'uuid' });
const GranteeType = Type.Union([Type.Literal('user'), Type.Literal('group'), Type.Literal('role'), Type.Literal('role_and_subordinates')]);

/** A sharing rule is exactly the policy library's SharingRule (criteria or owner rule). */
export const SharingRuleBodySchema = SharingRuleSchema;

export const ShareBodySchema = Type.Object(
  {
    granteeType: GranteeType,
    granteeId: Id,
    accessLevel: Type.Union([Type.Literal('read'), Type.Literal('edit')]),
    /** Lowering an existing grantee's share (edit → read) must say so; otherwise 409. */
    replace: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type ShareBody = Static<typeof ShareBodySchema>;

export const TransferBodySchema = Type.Object({ ownerId: Id }, { additionalProperties: false });

export const ExplainBodySchema = Type.Object(
  {
    userId: Type.Optional(Id),
    action: Type.Union(['read', 'create', 'edit', 'delete', 'transfer', 'share'].map((a) => Type.Literal(a))),
    object: Type.String({ pattern: '^[a-z][a-z0-9_]{0,27}$' }),
    recordId: Type.Optional(Id),
    field: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9_]{0,62}$' })),
  },
  { additionalProperties: false },
);
export type ExplainBody = Static<typeof ExplainBodySchema>;

export const MAX_RULES_PER_OBJECT = 300;
