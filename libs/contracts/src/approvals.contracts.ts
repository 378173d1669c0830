import { Type, type Static } from '@sinclair/typebox';
import { defineEvent, defineRequest } from './contract';
import { ApplyRecordOperation, RecordOperationResultSchema, RequesterSchema } from './objects.contracts';
import { PermissionChangeSchema } from './permission-change.contracts';

const Id = Type.String({ format: 'uuid' });
const ObjectName = Type.String({ pattern: '^[a-z][a-z0-9_]{0,27}$' });

/**
 * What a pending action proposes. Record kinds and `action.run` (a declared action: an update with
 * the action's values) are applied by objects with the record's expected version; `metadata.change`
 * (`values` is the object's whole new definition, as `PUT meta/objects/:name` takes it) with the
 * definition's version. `permission.change` carries a typed `change` (no `object`: it is filed under
 * the set, role or rule's object) and is applied by its owner with a content-hash version.
 */
export const PENDING_ACTION_KINDS = [
  'record.create',
  'record.update',
  'record.delete',
  'action.run',
  'metadata.change',
  'permission.change',
] as const;
export type PendingActionKind = (typeof PENDING_ACTION_KINDS)[number];

/**
 * `pending → approved → applied | stale | forbidden | failed` and `pending → rejected | cancelled |
 * expired`. A state is never skipped and never left once final (docs/approvals.md).
 */
export const PENDING_ACTION_STATES = [
  'pending',
  'approved',
  'applied',
  'stale',
  'forbidden',
  'failed',
  'rejected',
  'cancelled',
  'expired',
] as const;
export type PendingActionState = (typeof PENDING_ACTION_STATES)[number];

/** Who proposed: the user, the credential used, and the agent with its delegation when an agent proposed. */
export const ProposerSchema = Type.Object(
  {
    ...RequesterSchema.properties,
    sessionId: Type.Optional(Id),
    apiKeyId: Type.Optional(Id),
  },
  { additionalProperties: false },
);
export type Proposer = Static<typeof ProposerSchema>;

/** Where an agent's proposal came from, for reviewers (prompt-injection review). */
export const ProposalContextSchema = Type.Object(
  {
    conversationId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    toolCallId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    sessionId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    /** Records whose text the agent had read before proposing. */
    recordsRead: Type.Optional(Type.Array(Type.Object({ object: ObjectName, id: Id }, { additionalProperties: false }), { maxItems: 200 })),
  },
  { additionalProperties: false },
);
export type ProposalContext = Static<typeof ProposalContextSchema>;

export const ProposalSchema = Type.Object(
  {
    kind: Type.Union(PENDING_ACTION_KINDS.map((k) => Type.Literal(k))),
    /** Every kind but permission.change. */
    object: Type.Optional(ObjectName),
    /** permission.change: what changes (a permission set edited or assigned, a role moved, a sharing rule). */
    change: Type.Optional(PermissionChangeSchema),
    /** update / delete / action.run */
    recordId: Type.Optional(Id),
    /** action.run: the declared action's name */
    action: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[a-z][a-z0-9_]*$' })),
    /** create / update: the proposed field values; metadata.change: the object's new definition */
    values: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), { maxProperties: 200 })),
    justification: Type.String({ minLength: 1, maxLength: 2000 }),
    /** The version the proposer saw (update / delete): a record changed since is refused at filing (412). */
    expectedVersion: Type.Optional(Type.Integer({ minimum: 1 })),
    context: Type.Optional(ProposalContextSchema),
  },
  { additionalProperties: false },
);
export type Proposal = Static<typeof ProposalSchema>;

/** What the proposer learns when filing (the MCP gateway answers the agent with it). */
export const FiledActionSchema = Type.Object(
  {
    id: Id,
    state: Type.Union(PENDING_ACTION_STATES.map((s) => Type.Literal(s))),
    revision: Type.Integer({ minimum: 1 }),
    /**
     * Changed fields the proposer can read ({field: {from, to}}), a definition diff for
     * metadata.change, or the impact (who gains or loses what) for permission.change.
     */
    diff: Type.Record(Type.String({ maxLength: 64 }), Type.Unknown()),
    expiresAt: Type.String({ maxLength: 40 }),
    requiredApprovals: Type.Integer({ minimum: 1 }),
    policy: Type.Union([Type.String({ maxLength: 128 }), Type.Null()]),
  },
  { additionalProperties: false },
);
export type FiledAction = Static<typeof FiledActionSchema>;

/**
 * Files a proposal (the agent gateway, for every mutating tool call). Approvals validates it with
 * objects' dry-run under the proposer's permission now; an invalid or forbidden change is refused
 * before anything is queued (a `CustodianException` with the dry-run's code).
 */
export const FilePendingAction = defineRequest({
  subject: 'approvals.action.file',
  service: 'approvals',
  request: Type.Object({ proposer: ProposerSchema, proposal: ProposalSchema }, { additionalProperties: false }),
  response: FiledActionSchema,
  timeoutMs: 10_000,
});

/** The state of one pending action, for its proposer (an agent following its proposal). */
export const GetPendingActionState = defineRequest({
  subject: 'approvals.action.state',
  service: 'approvals',
  request: Type.Object({ proposer: ProposerSchema, id: Id }, { additionalProperties: false }),
  response: Type.Object(
    {
      id: Id,
      /** What was proposed (record.update, action.run, …); optional so older approvals replicas still answer. */
      kind: Type.Optional(Type.Union(PENDING_ACTION_KINDS.map((k) => Type.Literal(k)))),
      object: Type.Optional(Type.String({ maxLength: 64 })),
      state: Type.Union(PENDING_ACTION_STATES.map((s) => Type.Literal(s))),
      revision: Type.Integer({ minimum: 1 }),
      expiresAt: Type.Optional(Type.String({ maxLength: 40 })),
      recordId: Type.Union([Id, Type.Null()]),
      outcome: Type.Union([
        Type.Object({ code: Type.Optional(Type.String({ maxLength: 64 })), message: Type.Optional(Type.String({ maxLength: 2000 })) }),
        Type.Null(),
      ]),
    },
    { additionalProperties: false },
  ),
});

/**
 * Notification of every state change, after its commit (console, webhooks, the agent learning the
 * outcome). The durable record of the change is the audit event written in the same transaction.
 */
export const PendingActionChanged = defineEvent({
  subject: 'evt.approvals.action',
  payload: Type.Object(
    {
      orgId: Id,
      id: Id,
      state: Type.Union(PENDING_ACTION_STATES.map((s) => Type.Literal(s))),
      revision: Type.Integer({ minimum: 1 }),
    },
    { additionalProperties: false },
  ),
});

/**
 * A record as one reviewer may see it: objects answers with the fields the reviewer can read on the
 * object and, for a record id, the record's current readable values — or `not_found` when the
 * reviewer cannot read it (missing, other org, no access: indistinguishable).
 */
export const ReviewRecord = defineRequest({
  subject: 'objects.record.review',
  service: 'objects',
  request: Type.Object(
    { reviewer: Type.Object({ userId: Id, orgId: Id }, { additionalProperties: false }), object: ObjectName, recordId: Type.Optional(Id) },
    { additionalProperties: false },
  ),
  response: Type.Object(
    {
      outcome: Type.Union([Type.Literal('ok'), Type.Literal('not_found')]),
      readableFields: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 500 }),
      record: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.Unknown())),
    },
    { additionalProperties: false },
  ),
});

/**
 * Bulk review (one reviewer, many targets): whether the reviewer can read each target now, decided
 * exactly as ReviewRecord decides it (the reviewer's principal rebuilt by identity, the read row
 * filter), but with one principal and one statement per object instead of one round trip per item.
 * Answers in item order; no record values (a bulk decision shows none).
 */
export const ReviewRecords = defineRequest({
  subject: 'objects.record.review-many',
  service: 'objects',
  request: Type.Object(
    {
      reviewer: Type.Object({ userId: Id, orgId: Id }, { additionalProperties: false }),
      items: Type.Array(Type.Object({ object: ObjectName, recordId: Type.Optional(Id) }, { additionalProperties: false }), {
        minItems: 1,
        maxItems: 1000,
      }),
    },
    { additionalProperties: false },
  ),
  response: Type.Object(
    {
      results: Type.Array(
        Type.Object({ outcome: Type.Union([Type.Literal('ok'), Type.Literal('not_found')]) }, { additionalProperties: false }),
        {
          maxItems: 1000,
        },
      ),
    },
    { additionalProperties: false },
  ),
  timeoutMs: 30_000,
});

/**
 * Applies many approved record operations (a bulk approval's): each item exactly as
 * ApplyRecordOperation would apply it on its own (the requester's permission re-checked now, the
 * expected version, the idempotency receipt, its own audit event) and answered in item order.
 * Objects rebuilds each distinct requester's principal once and writes the items of one requester
 * in one transaction; a statement that fails there rolls that transaction back and the items are
 * applied one by one instead.
 */
export const ApplyRecordOperations = defineRequest({
  subject: 'objects.record.apply-many',
  service: 'objects',
  request: Type.Object(
    { items: Type.Array(ApplyRecordOperation.request, { minItems: 1, maxItems: 500 }) },
    { additionalProperties: false },
  ),
  response: Type.Object({ results: Type.Array(RecordOperationResultSchema, { maxItems: 500 }) }, { additionalProperties: false }),
  timeoutMs: 60_000,
});

/** The approval policy that catches a human's change, if any (objects asks before writing). */
export const MatchApprovalPolicy = defineRequest({
  subject: 'approvals.policy.match',
  service: 'approvals',
  request: Type.Object(
    {
      orgId: Id,
      object: ObjectName,
      operation: Type.Union([Type.Literal('create'), Type.Literal('update'), Type.Literal('delete'), Type.Literal('action')]),
    },
    { additionalProperties: false },
  ),
  response: Type.Object(
    {
      policy: Type.Union([
        Type.Object(
          {
            name: Type.String({ maxLength: 128 }),
            minApprovals: Type.Integer({ minimum: 1 }),
            approverCapability: Type.String({ maxLength: 64 }),
          },
          { additionalProperties: false },
        ),
        Type.Null(),
      ]),
    },
    { additionalProperties: false },
  ),
});

/** Broadcast after an org's approval policies changed: caches of policy matches drop the org. */
export const ApprovalPoliciesChanged = defineEvent({
  subject: 'evt.approvals.policies',
  payload: Type.Object({ orgId: Id }, { additionalProperties: false }),
});
