import { Type } from '@sinclair/typebox';
import { FiledActionSchema, PENDING_ACTION_STATES } from '@custodian/contracts';
import { AnyObject, DateTime, Nullable, Uuid } from '@custodian/platform';

/** The answers of approvals' routes, for the OpenAPI document (`@ApiContract`, docs/api.md). */
const State = Type.Union(PENDING_ACTION_STATES.map((s) => Type.Literal(s)));
export const PendingActionSummaryAnswer = Type.Object(
  {
    id: Uuid,
    kind: Type.String(),
    state: State,
    revision: Type.Integer({ minimum: 1 }),
    object: Type.String(),
    recordId: Nullable(Type.String()),
    requester: Type.Object(
      { userId: Uuid, agent: Type.Optional(Type.Object({ clientId: Type.String(), name: Type.String() }, { additionalProperties: true })) },
      { additionalProperties: true },
    ),
    justification: Type.String(),
    policy: Nullable(Type.String()),
    requiredApprovals: Type.Integer(),
    approverCapability: Type.String(),
    expiresAt: DateTime,
    createdAt: DateTime,
    updatedAt: DateTime,
  },
  { additionalProperties: true },
);
export const PendingActionPage = Type.Object(
  { items: Type.Array(PendingActionSummaryAnswer), nextCursor: Nullable(Type.String()) },
  { additionalProperties: true },
);
export const PendingActionDetailAnswer = Type.Intersect([
  PendingActionSummaryAnswer,
  Type.Object({ diff: AnyObject }, { additionalProperties: true }),
]);
export const DecisionAnswer = Type.Object(
  { id: Uuid, state: State, revision: Type.Integer(), recordId: Nullable(Type.String()), outcome: Type.Optional(Type.Unknown()) },
  { additionalProperties: true },
);
export const BulkAnswer = Type.Object(
  {
    results: Type.Array(
      Type.Object(
        {
          id: Uuid,
          status: Type.Integer(),
          state: Type.Optional(State),
          code: Type.Optional(Type.String()),
          message: Type.Optional(Type.String()),
        },
        { additionalProperties: true },
      ),
    ),
  },
  { additionalProperties: true },
);
/** The org's approval policies (unpaged, bounded) in the one list envelope (ADR 0018). */
export const PolicyList = Type.Object({ items: Type.Array(AnyObject), nextCursor: Type.Null() }, { additionalProperties: true });
export const FiledActionAnswer = FiledActionSchema;
