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

/**
 * The actor of an event about a conversation when no principal was built (a turn that ended before
 * its delegated principal could be read): the conversation's user, credential and agent.
 */
export function conversationActor(c: {
  userId: string;
  sessionId: string | null;
  apiKeyId: string | null;
  agentClientId: string;
}): AuditEvent['actor'] {
  return {
    userId: c.userId,
    ...(c.sessionId ? { sessionId: c.sessionId } : {}),
    ...(c.apiKeyId ? { apiKeyId: c.apiKeyId } : {}),
    agent: { clientId: c.agentClientId },
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
