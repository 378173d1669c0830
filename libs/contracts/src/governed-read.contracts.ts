import { Type, type Static } from '@sinclair/typebox';
import { defineRequest } from './contract';
import { PrincipalSnapshotSchema } from './identity.contracts';

const ObjectName = Type.String({ pattern: '^[a-z][a-z0-9_]{0,27}$' });
const Id = Type.String({ format: 'uuid' });

/**
 * Governed reads over the bus, for the agent gateway's tools: objects answers exactly as its REST
 * routes would for this principal (the same RecordQueryService path: row filter, field security,
 * apps, agent scopes, freshness). The principal is the snapshot the caller resolved from the
 * bearer credential (identity built it); objects decides on it and never widens it. Refusals
 * travel as the bus error envelope with the REST error code (e.g. `object_not_found`,
 * `field_not_readable`, `validation_failed`).
 */
const Governed = { principal: PrincipalSnapshotSchema };

/** Field shape as the principal may see it (readable fields only; `editable` per the principal). */
export const DescribedFieldSchema = Type.Object(
  {
    name: Type.String({ maxLength: 64 }),
    label: Type.Optional(Type.String({ maxLength: 200 })),
    type: Type.String({ maxLength: 32 }),
    required: Type.Boolean(),
    /** The principal may write the field (on edit or create, as `can` of its object says). */
    editable: Type.Boolean(),
    sensitive: Type.Boolean(),
    /** Allowed values for enum-like fields, when the metadata names them. */
    enum: Type.Optional(Type.Array(Type.Unknown(), { maxItems: 1000 })),
    /** Target object of a lookup / master-detail field. */
    reference: Type.Optional(Type.String({ maxLength: 64 })),
    maxLength: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);
export type DescribedField = Static<typeof DescribedFieldSchema>;

export const DescribedObjectSchema = Type.Object(
  {
    name: ObjectName,
    label: Type.Optional(Type.String({ maxLength: 200 })),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
    /** What the principal may do on the object type (record access still decides per record). */
    can: Type.Object(
      { read: Type.Boolean(), create: Type.Boolean(), edit: Type.Boolean(), delete: Type.Boolean() },
      { additionalProperties: false },
    ),
    fields: Type.Array(DescribedFieldSchema, { maxItems: 500 }),
  },
  { additionalProperties: false },
);
export type DescribedObject = Static<typeof DescribedObjectSchema>;

/** The objects that exist for this principal (R6 apps, R7 agent allowlist), each as it may see it. */
export const DescribeObjects = defineRequest({
  subject: 'objects.governed.describe',
  service: 'objects',
  request: Type.Object({ ...Governed, object: Type.Optional(ObjectName) }, { additionalProperties: false }),
  response: Type.Object(
    { objects: Type.Array(DescribedObjectSchema, { maxItems: 500 }), policyVersion: Type.Integer({ minimum: 0 }) },
    { additionalProperties: false },
  ),
});

/** ObjectQL as `POST /api/v1/query` (same body, same limits); list or grouped aggregation result. */
export const GovernedQuery = defineRequest({
  subject: 'objects.governed.query',
  service: 'objects',
  request: Type.Object(
    { ...Governed, query: Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), { maxProperties: 32 }) },
    { additionalProperties: false },
  ),
  response: Type.Object(
    {
      records: Type.Optional(Type.Array(Type.Record(Type.String(), Type.Unknown()))),
      groups: Type.Optional(Type.Array(Type.Record(Type.String(), Type.Unknown()))),
      limit: Type.Optional(Type.Integer({ minimum: 0 })),
      /** Present when the query asked for an offset (REST `POST query` does not echo it: ADR 0018). */
      offset: Type.Optional(Type.Integer({ minimum: 0 })),
      nextCursor: Type.Optional(Type.Union([Type.String({ maxLength: 4096 }), Type.Null()])),
    },
    { additionalProperties: false },
  ),
  timeoutMs: 10_000,
});

/** One record as `GET /api/v1/data/:object/:id` answers it. */
export const GovernedGet = defineRequest({
  subject: 'objects.governed.get',
  service: 'objects',
  request: Type.Object({ ...Governed, object: ObjectName, id: Id }, { additionalProperties: false }),
  response: Type.Object({ record: Type.Record(Type.String(), Type.Unknown()) }, { additionalProperties: false }),
});

/** The actions declared on objects the principal may read, as `GET meta/objects/:name/actions` shows them. */
export const ListGovernedActions = defineRequest({
  subject: 'objects.governed.actions',
  service: 'objects',
  request: Type.Object({ ...Governed, object: Type.Optional(ObjectName) }, { additionalProperties: false }),
  response: Type.Object(
    {
      actions: Type.Array(
        Type.Object(
          {
            name: Type.String({ maxLength: 128 }),
            object: ObjectName,
            label: Type.Optional(Type.String({ maxLength: 200 })),
            description: Type.Optional(Type.String({ maxLength: 2000 })),
            kind: Type.String({ maxLength: 32 }),
            /** The values the action sets, limited to fields the principal may read. */
            set: Type.Record(Type.String({ maxLength: 64 }), Type.Unknown()),
            /** Running it waits for approval (an approval policy may require it anyway). */
            requiresApproval: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        { maxItems: 5000 },
      ),
    },
    { additionalProperties: false },
  ),
});
