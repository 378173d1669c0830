import { Type, type TSchema } from '@sinclair/typebox';

/** Reusable response shapes for `@ApiContract` (the bodies the handlers answer with). */

/** An object whose shape the document does not pin down (each property typed by the route's own docs). */
export const AnyObject = Type.Object({}, { additionalProperties: true });

export const Uuid = Type.String({ format: 'uuid' });
export const DateTime = Type.String({ format: 'date-time' });
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** The one list answer (ADR 0018): `{items, nextCursor}`, `nextCursor` null on the last page. */
export const CursorPage = <T extends TSchema>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Nullable(Type.String()) }, { additionalProperties: false });

/** `limit` / `cursor` query parameters of the directory lists (the cursor is a previous answer's `nextCursor`). */
export const CursorPageQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,6}$', description: '1..200, default 50' })),
    cursor: Type.Optional(Type.String({ maxLength: 64, description: "a previous answer's nextCursor" })),
  },
  { additionalProperties: false },
);

/** RFC 9457 problem document, as every error leaves the HTTP edge. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String(),
    detail: Type.String(),
    requestId: Type.String(),
    details: Type.Optional(Type.Unknown()),
  },
  { additionalProperties: false },
);
