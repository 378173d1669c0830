import { Type, type TSchema } from '@sinclair/typebox';

/** Reusable response shapes for `@ApiContract` (the bodies the handlers answer with). */

/** An object whose shape the document does not pin down (each property typed by the route's own docs). */
export const AnyObject = Type.Object({}, { additionalProperties: true });

export const Uuid = Type.String({ format: 'uuid' });
export const DateTime = Type.String({ format: 'date-time' });
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** The offset page of the directory lists: `{items, limit, offset, nextOffset?}`. */
export const OffsetPage = <T extends TSchema>(item: T) =>
  Type.Object(
    {
      items: Type.Array(item),
      limit: Type.Integer(),
      offset: Type.Integer(),
      nextOffset: Type.Optional(Type.Integer()),
    },
    { additionalProperties: false },
  );

/** The cursor page of the queue and audit lists: `{items, nextCursor}`. */
export const CursorPage = <T extends TSchema>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Nullable(Type.String()) }, { additionalProperties: false });

/** `limit` / `offset` query parameters of the offset-paged lists. */
export const OffsetPageQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,6}$', description: '1..200, default 50' })),
    offset: Type.Optional(Type.String({ pattern: '^[0-9]{1,6}$', description: '0..10000, default 0' })),
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
