import { Type, type Static } from '@sinclair/typebox';
import { defineEvent } from './contract';

/** One audit event as written to a service's outbox and relayed to the audit service. */
export const AuditEventSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    orgId: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]),
    occurredAt: Type.String({ format: 'date-time' }),
    service: Type.String({ maxLength: 32 }),
    action: Type.String({ pattern: '^[a-z][a-z0-9_.]*$', maxLength: 96 }),
    outcome: Type.Union([Type.Literal('success'), Type.Literal('failure'), Type.Literal('denied')]),
    actor: Type.Object(
      {
        userId: Type.Optional(Type.String({ format: 'uuid' })),
        sessionId: Type.Optional(Type.String({ format: 'uuid' })),
        apiKeyId: Type.Optional(Type.String({ format: 'uuid' })),
        ip: Type.Optional(Type.String({ maxLength: 64 })),
        userAgent: Type.Optional(Type.String({ maxLength: 512 })),
      },
      { additionalProperties: false },
    ),
    target: Type.Optional(
      Type.Object(
        { type: Type.String({ maxLength: 64 }), id: Type.Optional(Type.String({ maxLength: 128 })) },
        { additionalProperties: false },
      ),
    ),
    requestId: Type.Optional(Type.String({ maxLength: 128 })),
    details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);
export type AuditEvent = Static<typeof AuditEventSchema>;

export const AuditEventRecorded = defineEvent({ subject: 'evt.audit.recorded', payload: AuditEventSchema });
