import { Type } from '@sinclair/typebox';
import { AnyObject, Nullable } from '@custodian/platform';

/**
 * The answers of objects' routes, for the OpenAPI document (`@ApiContract`, docs/api.md). A
 * record's own fields depend on its object definition, so records are open objects here.
 */
export const RecordAnswer = Type.Object({ id: Type.String(), version: Type.Optional(Type.Integer()) }, { additionalProperties: true });
export const RecordList = Type.Object(
  { records: Type.Array(RecordAnswer), limit: Type.Integer(), nextCursor: Type.Optional(Type.String()) },
  { additionalProperties: true },
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
export const ObjectList = Type.Object({ objects: Type.Array(AnyObject), policyVersion: Type.Integer() }, { additionalProperties: true });
export const ObjectAnswer = Type.Object({ name: Type.String() }, { additionalProperties: true });
export const Items = Type.Object({ items: Type.Array(AnyObject) }, { additionalProperties: true });
export const Shares = Type.Object({ shares: Type.Array(AnyObject) }, { additionalProperties: true });
export const Rules = Type.Object({ rules: Type.Array(AnyObject) }, { additionalProperties: true });
export const BundleAnswer = Type.Object(
  { dryRun: Type.Boolean(), digest: Type.String(), changes: Type.Array(AnyObject) },
  { additionalProperties: true },
);
export const FileAnswer = Type.Object(
  { name: Type.Optional(Type.String()), size: Type.Optional(Type.Integer()), contentType: Type.Optional(Nullable(Type.String())) },
  { additionalProperties: true },
);
export { AnyObject };
export const QueryAnswer = Type.Union([RecordList, GroupsAnswer]);
