import { Type, type Static } from '@sinclair/typebox';
import { PermissionSetSchema, SYSTEM_CAPABILITIES } from '@custodian/policy';
import { defineRequest } from './contract';

const Id = Type.String({ format: 'uuid' });
/** Names of roles, groups and approval policies in a bundle (what identity and approvals match on). */
export const BundleItemNameSchema = Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_ .-]{0,127}$' });
const ObjectName = Type.String({ pattern: '^[a-z][a-z0-9_]{0,27}$' });

/**
 * Who applies a bundle section. The receiving service does not trust it as a claim: it rebuilds the
 * principal from these ids (identity's snapshot, which also checks the session or API key is live)
 * and checks the capabilities the section needs itself.
 */
export const BundleActorSchema = Type.Object(
  { userId: Id, sessionId: Type.Optional(Id), apiKeyId: Type.Optional(Id) },
  { additionalProperties: false },
);
export type BundleActor = Static<typeof BundleActorSchema>;

/** One line of a bundle diff; every section of every service answers in this shape. */
export const BundleChangeSchema = Type.Object(
  {
    kind: Type.String({ maxLength: 32 }),
    name: Type.String({ maxLength: 256 }),
    /** The id of what this line created or changed (absent on a dry run's creates: nothing was kept). */
    id: Type.Optional(Type.String({ maxLength: 256 })),
    change: Type.Union([Type.Literal('create'), Type.Literal('update'), Type.Literal('unchanged')]),
    before: Type.Optional(Type.Unknown()),
    after: Type.Optional(Type.Unknown()),
  },
  { additionalProperties: false },
);
export type BundleChange = Static<typeof BundleChangeSchema>;

export const BundleRoleSchema = Type.Object(
  { name: BundleItemNameSchema, parent: Type.Optional(BundleItemNameSchema) },
  { additionalProperties: false },
);
export const BundleGroupSchema = Type.Object(
  { name: BundleItemNameSchema, description: Type.Optional(Type.String({ maxLength: 1000 })) },
  { additionalProperties: false },
);

/**
 * Roles, groups and permission sets of a bundle, applied by identity in ONE transaction and
 * idempotently by name: roles in parent-first order (a cycle is a validation error), each item
 * created or updated only when it differs. `dryRun` computes the same diff and writes nothing.
 * The answer maps every role and group name of the org (and, on a dry-run, the ones the bundle
 * would create, with ids that exist only in that answer) to its id, for grantees named in sharing rules.
 */
export const ApplyIdentityBundle = defineRequest({
  subject: 'identity.bundle.apply',
  service: 'identity',
  request: Type.Object(
    {
      orgId: Id,
      actor: BundleActorSchema,
      roles: Type.Array(BundleRoleSchema, { maxItems: 1000 }),
      groups: Type.Array(BundleGroupSchema, { maxItems: 1000 }),
      permissionSets: Type.Array(PermissionSetSchema, { maxItems: 1000 }),
      dryRun: Type.Boolean(),
    },
    { additionalProperties: false },
  ),
  response: Type.Object(
    {
      changes: Type.Array(BundleChangeSchema, { maxItems: 3000 }),
      roleIds: Type.Record(Type.String({ maxLength: 128 }), Id),
      groupIds: Type.Record(Type.String({ maxLength: 128 }), Id),
    },
    { additionalProperties: false },
  ),
  timeoutMs: 30_000,
});

export const APPROVAL_OPERATIONS = ['create', 'update', 'delete', 'action'] as const;

/**
 * When a change needs approval, and by whom: operations on one object (or every object), the
 * capability approvers must hold, how many distinct approvals, and whether the requester may
 * approve their own request (never, with separation of duties).
 */
export const ApprovalPolicySchema = Type.Object(
  {
    name: BundleItemNameSchema,
    description: Type.Optional(Type.String({ maxLength: 1000 })),
    /** Absent: every object. */
    object: Type.Optional(ObjectName),
    operations: Type.Array(Type.Union(APPROVAL_OPERATIONS.map((o) => Type.Literal(o))), { minItems: 1, maxItems: 4, uniqueItems: true }),
    approverCapability: Type.Optional(Type.Union(SYSTEM_CAPABILITIES.map((c) => Type.Literal(c)))),
    minApprovals: Type.Optional(Type.Integer({ minimum: 1, maximum: 5 })),
    separationOfDuties: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type ApprovalPolicyInput = Static<typeof ApprovalPolicySchema>;
/** A policy with its defaults filled in: what approvals stores and compares. */
export type ApprovalPolicy = Required<Omit<ApprovalPolicyInput, 'object' | 'description'>> &
  Pick<ApprovalPolicyInput, 'object' | 'description'>;

export function normaliseApprovalPolicy(p: ApprovalPolicyInput): ApprovalPolicy {
  return {
    name: p.name,
    ...(p.description !== undefined ? { description: p.description } : {}),
    ...(p.object !== undefined ? { object: p.object } : {}),
    operations: [...p.operations].sort(),
    approverCapability: p.approverCapability ?? 'approve_actions',
    minApprovals: p.minApprovals ?? 1,
    separationOfDuties: p.separationOfDuties ?? true,
  };
}

/**
 * Approval policies of a bundle, applied by approvals idempotently by name in one transaction (with
 * an audit event per change through its outbox). Approvals re-reads the actor's snapshot from
 * identity and requires `manage_metadata`. `dryRun` answers the same diff and writes nothing.
 */
export const ApplyApprovalPolicies = defineRequest({
  subject: 'approvals.policies.apply',
  service: 'approvals',
  request: Type.Object(
    {
      orgId: Id,
      actor: BundleActorSchema,
      policies: Type.Array(ApprovalPolicySchema, { maxItems: 1000 }),
      dryRun: Type.Boolean(),
    },
    { additionalProperties: false },
  ),
  response: Type.Object({ changes: Type.Array(BundleChangeSchema, { maxItems: 1000 }) }, { additionalProperties: false }),
  timeoutMs: 30_000,
});
