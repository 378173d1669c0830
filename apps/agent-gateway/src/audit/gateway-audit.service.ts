import { Inject, Injectable } from '@nestjs/common';
import type { AuditEvent, PrincipalSnapshot } from '@custodian/contracts';
import { agentOf, OutboxWriter, SERVICE_DATA_SOURCE, type AuditEventInput } from '@custodian/platform';
import type { DataSource } from 'typeorm';

/** The actor of a gateway event: the user, the credential, and the agent when a delegated token acts. */
export function actorOf(principal: PrincipalSnapshot): AuditEvent['actor'] {
  const agent = agentOf(principal);
  return {
    userId: principal.userId,
    ...(principal.sessionId ? { sessionId: principal.sessionId } : {}),
    ...(principal.apiKeyId ? { apiKeyId: principal.apiKeyId } : {}),
    ...(agent ? { agent } : {}),
  };
}

/**
 * Writes the gateway's audit events (sessions, tool calls) to its outbox. The actor is stated
 * explicitly rather than taken from the request context: session ends happen on timers, outside
 * any request.
 */
@Injectable()
export class GatewayAudit {
  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
  ) {}

  async record(principal: PrincipalSnapshot, event: Omit<AuditEventInput, 'orgId' | 'actor'>): Promise<void> {
    // The event is the only write, and one INSERT is atomic by itself: no BEGIN/COMMIT round trips
    // on every tool call.
    await this.outbox.append(this.ds.manager, { ...event, orgId: principal.orgId, actor: actorOf(principal) });
  }
}
