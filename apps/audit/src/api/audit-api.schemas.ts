import { Type } from '@sinclair/typebox';

const Uuid = Type.String({ format: 'uuid' });
const DateTime = Type.String({ format: 'date-time', maxLength: 40 });

/** GET audit/events query string (all values arrive as strings; unknown parameters are refused). */
export const ListEventsQuerySchema = Type.Object(
  {
    actor: Type.Optional(Uuid),
    action: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9_.]*$', maxLength: 96 })),
    objectType: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    recordId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    outcome: Type.Optional(Type.Union([Type.Literal('success'), Type.Literal('failure'), Type.Literal('denied')])),
    from: Type.Optional(DateTime),
    to: Type.Optional(DateTime),
    cursor: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,17}$' })),
    limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,2}$' })),
  },
  { additionalProperties: false },
);

export const ArchiveRequestSchema = Type.Object({ before: DateTime }, { additionalProperties: false });

export const MAX_PAGE = 500;
export const DEFAULT_PAGE = 50;
