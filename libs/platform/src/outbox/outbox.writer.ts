import { AuditEventRecorded, AuditEventSchema, ErrorCode, type AuditEvent, type ServiceName } from '@custodian/contracts';
import type { EntityManager } from 'typeorm';
import { CustodianException } from '../errors/custodian.exception';
import { requestContext } from '../context/request-context';
import { validate } from '../validation/schema-validator';
import { OutboxEntity } from './outbox.entity';
import { uuidv7 } from './uuidv7';

export type AuditEventInput = Omit<AuditEvent, 'id' | 'occurredAt' | 'service' | 'requestId' | 'actor'> & {
  actor?: AuditEvent['actor'];
};

/**
 * Appends audit events to the service's outbox inside the caller's transaction. Actor, request id
 * and time come from the request context, so call sites state only what happened.
 */
export class OutboxWriter {
  private readonly listeners = new Set<() => void>();

  constructor(private readonly service: ServiceName) {}

  async append(manager: EntityManager, input: AuditEventInput): Promise<AuditEvent> {
    const ctx = requestContext.current();
    const event: AuditEvent = {
      id: uuidv7(),
      occurredAt: new Date().toISOString(),
      service: this.service,
      requestId: ctx?.requestId,
      ...input,
      actor: {
        ...(ctx?.principal ? { userId: ctx.principal.userId, sessionId: ctx.principal.sessionId, apiKeyId: ctx.principal.apiKeyId } : {}),
        ...(ctx?.ip ? { ip: ctx.ip } : {}),
        ...(ctx?.userAgent ? { userAgent: ctx.userAgent.slice(0, 512) } : {}),
        ...input.actor,
      },
    };
    for (const key of Object.keys(event.actor) as Array<keyof AuditEvent['actor']>) {
      if (event.actor[key] === undefined) delete event.actor[key];
    }
    if (event.requestId === undefined) delete event.requestId;
    const check = validate(AuditEventSchema, event);
    if (!check.ok) {
      throw new CustodianException(ErrorCode.Internal, 'Audit event does not match its schema', { issues: check.issues });
    }
    await manager
      .createQueryBuilder()
      .insert()
      .into(OutboxEntity)
      .values({ id: event.id, subject: AuditEventRecorded.subject, payload: () => ':payload' })
      .setParameter('payload', JSON.stringify(event))
      .execute();
    // Wake the relay once the surrounding transaction has had a chance to commit.
    setImmediate(() => this.listeners.forEach((l) => l()));
    return event;
  }

  onAppend(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
