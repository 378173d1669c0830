import { Type, type Static } from '@sinclair/typebox';
import { defineRequest } from './contract';

const Id = Type.String({ format: 'uuid' });
const ObjectName = Type.String({ pattern: '^[a-z][a-z0-9_]{0,27}$' });

/**
 * Who a pending action acts for. Objects re-reads this user's snapshot from identity (narrowed to
 * the agent's delegation when present) on every dry-run and apply, so a permission lost between
 * proposal and approval is seen at apply time (R7, P1).
 */
export const RequesterSchema = Type.Object(
  {
    userId: Id,
    orgId: Id,
    agent: Type.Optional(
      Type.Object(
        {
          clientId: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' }),
          name: Type.String({ minLength: 1, maxLength: 200 }),
          scopes: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 8 }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type Requester = Static<typeof RequesterSchema>;

export const RecordOperationSchema = Type.Union([Type.Literal('create'), Type.Literal('update'), Type.Literal('delete')]);

const OperationFields = {
  requester: RequesterSchema,
  operation: RecordOperationSchema,
  object: ObjectName,
  /** update / delete */
  recordId: Type.Optional(Id),
  /** create / update: the field values (validated like a REST body) */
  values: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), { maxProperties: 200 })),
  /**
   * update only: run this declared action instead of `values` — its values are the update. An
   * agent needs the `actions:execute` scope for it. With `values` too (an apply), they must equal
   * the action's values now, or the answer is `stale` (the action changed since it was approved).
   */
  action: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[a-z][a-z0-9_]*$' })),
};

const FieldDiffSchema = Type.Record(
  Type.String({ maxLength: 64 }),
  Type.Object({ from: Type.Unknown(), to: Type.Unknown() }, { additionalProperties: false }),
);

/**
 * What every dry-run / apply over the bus answers (records, metadata, permission changes):
 * refusals are answers with the REST error code, not transport errors.
 */
export const OperationOutcomeFields = {
  outcome: Type.Union([
    Type.Literal('allowed'),
    Type.Literal('applied'),
    Type.Literal('stale'),
    Type.Literal('forbidden'),
    Type.Literal('not_found'),
    Type.Literal('invalid'),
    Type.Literal('conflict'),
  ]),
  /** Error code (problem+json `code`) when the outcome is a refusal. */
  code: Type.Optional(Type.String({ maxLength: 64 })),
  message: Type.Optional(Type.String({ maxLength: 2000 })),
};

/** The outcome of a dry-run or an apply of a record operation. */
export const RecordOperationResultSchema = Type.Object(
  {
    ...OperationOutcomeFields,
    recordId: Type.Optional(Id),
    /** The record's version before the operation (dry-run) or after it (apply); null for a create dry-run. */
    version: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])),
    /** Changed fields the requester can read; hidden fields are absent (R5). */
    diff: Type.Optional(FieldDiffSchema),
    /** The values written (or to be written): for an action, its values as they are now. */
    values: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), { maxProperties: 200 })),
  },
  { additionalProperties: false },
);
export type RecordOperationResult = Static<typeof RecordOperationResultSchema>;

/** Runs the whole operation with every check, then rolls back: the diff, current version and decision. */
export const DryRunRecordOperation = defineRequest({
  subject: 'objects.record.dry-run',
  service: 'objects',
  request: Type.Object(OperationFields, { additionalProperties: false }),
  response: RecordOperationResultSchema,
});

/**
 * Applies an approved operation under the requester's re-checked permission. `expectedVersion` is
 * required for update and delete: a record changed since the proposal is `stale`, never re-applied.
 */
export const ApplyRecordOperation = defineRequest({
  subject: 'objects.record.apply',
  service: 'objects',
  request: Type.Object(
    {
      ...OperationFields,
      expectedVersion: Type.Optional(Type.Integer({ minimum: 1 })),
      /** Makes a retried apply answer the first result (F1); e.g. the pending action's id. */
      idempotencyKey: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    },
    { additionalProperties: false },
  ),
  response: RecordOperationResultSchema,
});
