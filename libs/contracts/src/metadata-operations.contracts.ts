import { Type, type Static } from '@sinclair/typebox';
import { defineRequest } from './contract';
import { OperationOutcomeFields, RequesterSchema } from './objects.contracts';

const ObjectName = Type.String({ pattern: '^[a-z][a-z0-9_]{0,27}$' });

/** What a proposed object definition changes, for reviewers. */
export const MetadataDiffSchema = Type.Object(
  {
    fieldsAdded: Type.Array(Type.Record(Type.String(), Type.Unknown()), { maxItems: 500 }),
    fieldsRemoved: Type.Array(Type.Record(Type.String(), Type.Unknown()), { maxItems: 500 }),
    /** Fields whose definition changed: the field's old and new definition. */
    fieldsChanged: Type.Array(
      Type.Object({ name: Type.String({ maxLength: 64 }), from: Type.Unknown(), to: Type.Unknown() }, { additionalProperties: false }),
      { maxItems: 500 },
    ),
    /** Object-level properties that changed (label, sharingModel, grantAccessUsingHierarchy, app, auditReads, …). */
    properties: Type.Record(
      Type.String({ maxLength: 64 }),
      Type.Object({ from: Type.Unknown(), to: Type.Unknown() }, { additionalProperties: false }),
    ),
  },
  { additionalProperties: false },
);
export type MetadataDiff = Static<typeof MetadataDiffSchema>;

const MetadataOperationFields = {
  requester: RequesterSchema,
  object: ObjectName,
  /** The object's whole new definition, as `PUT meta/objects/:name` takes it. */
  definition: Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), { maxProperties: 64 }),
};

export const MetadataOperationResultSchema = Type.Object(
  {
    ...OperationOutcomeFields,
    /** The definition's version before (dry-run) or after (apply) the change. */
    version: Type.Optional(Type.Integer({ minimum: 1 })),
    diff: Type.Optional(MetadataDiffSchema),
  },
  { additionalProperties: false },
);
export type MetadataOperationResult = Static<typeof MetadataOperationResultSchema>;

/**
 * Runs a replacement of an object definition with every check (the requester's `manage_metadata`,
 * narrowed for agents by `metadata:write`; the definition's validity; the DDL itself), then rolls
 * back: the diff and the current version.
 */
export const DryRunMetadataChange = defineRequest({
  subject: 'objects.metadata.dry-run',
  service: 'objects',
  request: Type.Object(MetadataOperationFields, { additionalProperties: false }),
  response: MetadataOperationResultSchema,
  timeoutMs: 15_000,
});

/** Applies an approved definition if its version is still `expectedVersion` (else `stale`). */
export const ApplyMetadataChange = defineRequest({
  subject: 'objects.metadata.apply',
  service: 'objects',
  request: Type.Object(
    {
      ...MetadataOperationFields,
      expectedVersion: Type.Integer({ minimum: 1 }),
      idempotencyKey: Type.String({ minLength: 1, maxLength: 200 }),
    },
    { additionalProperties: false },
  ),
  response: MetadataOperationResultSchema,
  timeoutMs: 15_000,
});
