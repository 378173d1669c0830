import { Type } from '@sinclair/typebox';
import { AnyObject, Nullable } from '@custodian/platform';

/** The answers of audit's routes, for the OpenAPI document (`@ApiContract`, docs/api.md). */
/** The one list envelope (ADR 0018). */
export const EventPage = Type.Object({ items: Type.Array(AnyObject), nextCursor: Nullable(Type.String()) }, { additionalProperties: true });
export const VerifyAnswer = Type.Object(
  {
    ok: Type.Boolean(),
    chainId: Type.String(),
    rows: Type.Integer(),
    headSeq: Type.Integer(),
    headHash: Type.String(),
    firstBadSeq: Type.Optional(Type.Integer()),
    problem: Type.Optional(Type.String()),
    checkpoint: Nullable(
      Type.Object({ seq: Type.Integer(), valid: Type.Boolean(), reason: Type.Optional(Type.String()) }, { additionalProperties: true }),
    ),
    head: Type.Boolean(),
  },
  { additionalProperties: true },
);
export const Checkpoint = Type.Object(
  { chainId: Type.String(), seq: Type.Integer(), headHash: Type.String(), signature: Type.String(), publicKey: Type.String() },
  { additionalProperties: true },
);
/** `GET audit/checkpoints`: the one list envelope (ADR 0018, unpaged) with the trusted public keys beside it. */
export const CheckpointList = Type.Object(
  { items: Type.Array(Checkpoint), nextCursor: Type.Null(), publicKeys: Type.Array(Type.String()) },
  { additionalProperties: true },
);
export const CheckpointSigned = Type.Object({ checkpoint: Nullable(Checkpoint) }, { additionalProperties: true });
export const ArchiveAnswer = Type.Object({ archived: Type.Integer() }, { additionalProperties: true });
export { AnyObject };
