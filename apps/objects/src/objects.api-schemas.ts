import { Type } from '@sinclair/typebox';
import { BundleChangeSchema } from '@custodian/contracts';
import { AnyObject, Nullable } from '@custodian/platform';

/** An unpaged list in the one list envelope (ADR 0018): `nextCursor` is always null. */
const Unpaged = <T extends Parameters<typeof Type.Array>[0]>(item: T, extra: Parameters<typeof Type.Object>[0] = {}) =>
  Type.Object({ items: Type.Array(item), nextCursor: Type.Null(), ...extra }, { additionalProperties: true });

/**
 * The answers of objects' routes, for the OpenAPI document (`@ApiContract`, docs/api.md). A
 * record's own fields depend on its object definition, so records are open objects here.
 */
export const RecordAnswer = Type.Object({ id: Type.String(), version: Type.Optional(Type.Integer()) }, { additionalProperties: true });
/** `GET data/:object`, `POST query`: the one list envelope (ADR 0018), `nextCursor` null on the last page. */
export const RecordList = Type.Object(
  { items: Type.Array(RecordAnswer), nextCursor: Nullable(Type.String()) },
  { additionalProperties: false },
);
export const GroupsAnswer = Type.Object({ groups: Type.Array(AnyObject) }, { additionalProperties: true });
export const PendingActionFiled = Type.Object({ pendingAction: AnyObject }, { additionalProperties: true });
export const ListQuery = Type.Object(
  {
    fields: Type.Optional(Type.String({ description: 'comma-separated field names' })),
    where: Type.Optional(Type.String({ description: 'a JSON ObjectQL filter' })),
    orderBy: Type.Optional(Type.String({ description: 'comma-separated fields, "-" for descending' })),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })),
    offset: Type.Optional(Type.String({ pattern: '^[0-9]{1,6}$' })),
    cursor: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
/** `GET meta/objects`: the one list envelope, with the caller's `policyVersion` beside the items. */
export const ObjectList = Unpaged(AnyObject, { policyVersion: Type.Integer() });
export const ObjectAnswer = Type.Object({ name: Type.String() }, { additionalProperties: true });
/** `GET meta/objects/:name/actions`, `GET data/:object/:id/shares`, `GET meta/objects/:name/sharing-rules` (unpaged). */
export const Items = Unpaged(AnyObject);
/** An explicit share of a record, as listed and as granted. */
export const ShareAnswer = Type.Object(
  {
    id: Type.String(),
    granteeType: Type.Union([Type.Literal('user'), Type.Literal('group'), Type.Literal('role'), Type.Literal('role_and_subordinates')]),
    granteeId: Type.String(),
    accessLevel: Type.Union([Type.Literal('read'), Type.Literal('edit')]),
    createdBy: Type.String(),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: true },
);
/** `POST data/:object/:id/shares`: the share, whether it is new (201) or replaced the grantee's share (200), and the level it replaced (ADR 0019). */
export const ShareGrantAnswer = Type.Composite(
  [
    ShareAnswer,
    Type.Object({ created: Type.Boolean(), previousAccessLevel: Nullable(Type.Union([Type.Literal('read'), Type.Literal('edit')])) }),
  ],
  { additionalProperties: true },
);
export const Shares = Unpaged(ShareAnswer);
export const Rules = Unpaged(AnyObject);
export const BundleAnswer = Type.Object(
  { dryRun: Type.Boolean(), digest: Type.String(), changes: Type.Array(BundleChangeSchema) },
  { additionalProperties: true },
);
export const FileAnswer = Type.Object(
  { name: Type.Optional(Type.String()), size: Type.Optional(Type.Integer()), contentType: Type.Optional(Nullable(Type.String())) },
  { additionalProperties: true },
);
export { AnyObject };
export const QueryAnswer = Type.Union([RecordList, GroupsAnswer]);
