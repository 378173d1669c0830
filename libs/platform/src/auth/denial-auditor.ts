import { AuditEventRecorded, type AuditEvent, type PrincipalSnapshot } from '@custodian/contracts';
import type { Logger } from 'pino';
import type { Bus } from '../bus/bus';
import { requestContext } from '../context/request-context';
import { uuidv7 } from '../outbox/uuidv7';

/** Records the guard's refusals (missing capability) in the audit trail (A6). */
export class DenialAuditor {
  constructor(
    private readonly bus: Bus,
    private readonly logger: Logger,
  ) {}

  /**
   * Records a refused request in the audit trail (A6). The guard has no database of its own, so the
   * event goes straight to the audit stream; a failure to publish is logged, never hides the 403.
   */
  async record(input: { principal: PrincipalSnapshot; route: string; missing: readonly string[] }): Promise<void> {
    const ctx = requestContext.current();
    const event: AuditEvent = {
      id: uuidv7(),
      orgId: input.principal.orgId,
      occurredAt: new Date().toISOString(),
      service: 'auth-guard',
      action: 'authz.denied',
      outcome: 'denied',
      actor: {
        userId: input.principal.userId,
        ...(input.principal.sessionId ? { sessionId: input.principal.sessionId } : {}),
        ...(input.principal.apiKeyId ? { apiKeyId: input.principal.apiKeyId } : {}),
        ...(ctx?.ip ? { ip: ctx.ip.slice(0, 64) } : {}),
      },
      target: { type: 'route', id: input.route.slice(0, 128) },
      ...(ctx?.requestId ? { requestId: ctx.requestId } : {}),
      details: { missingCapabilities: [...input.missing] },
    };
    await this.bus.publish(AuditEventRecorded, event, { messageId: event.id }).catch((error: unknown) => {
      this.logger.error({ err: error }, 'denial audit event could not be published');
    });
  }
}
