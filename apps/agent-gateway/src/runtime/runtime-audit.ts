import type { AuditEvent, PrincipalSnapshot } from '@custodian/contracts';
import { agentOf, OutboxWriter, type AuditEventInput } from '@custodian/platform';
import type { EntityManager } from 'typeorm';

/** The actor of a runtime event: the user, the credential, and the agent when one acts. */
export function runtimeActor(principal: PrincipalSnapshot): AuditEvent['actor'] {
  const agent = agentOf(principal);
  return {
    userId: principal.userId,
    ...(principal.sessionId ? { sessionId: principal.sessionId } : {}),
    ...(principal.apiKeyId ? { apiKeyId: principal.apiKeyId } : {}),
    ...(agent ? { agent } : {}),
  };
}

/** Appends a runtime audit event in the caller's transaction, with the actor stated (resumes run outside requests). */
export function appendRuntimeEvent(
  outbox: OutboxWriter,
  m: EntityManager,
  principal: PrincipalSnapshot,
  event: Omit<AuditEventInput, 'orgId' | 'actor'>,
): Promise<AuditEvent> {
  return outbox.append(m, { ...event, orgId: principal.orgId, actor: runtimeActor(principal) });
}
