import { AuditEventRecorded, type AuditEvent, type PrincipalSnapshot, type ServiceName } from '@custodian/contracts';
import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import type { Bus } from '../bus/bus';
import { requestContext } from '../context/request-context';
import type { MetricsService } from '../metrics/metrics.service';
import type { AuditEventInput } from '../outbox/outbox.writer';
import { uuidv7 } from '../outbox/uuidv7';

const audited = new WeakSet<object>();

/** Marks a refusal the guard has written to the audit trail already, so no later layer records it twice. */
export function markDenialAudited<T extends object>(error: T): T {
  audited.add(error);
  return error;
}

/** Whether the guard has recorded this refusal already (markDenialAudited). */
export function isDenialAudited(error: unknown): boolean {
  return typeof error === 'object' && error !== null && audited.has(error);
}

/** Where a service keeps the refusals on its routes: its own outbox, in a transaction of its own. */
export type DenialSink = (event: AuditEventInput) => Promise<void>;

export interface DenialRecord {
  principal: PrincipalSnapshot;
  route: string;
  missing: readonly string[];
  /** Which check refused: a missing capability (the default) or `agent_scope` (a delegated principal on a credential route). */
  layer?: 'capability' | 'agent_scope';
  /** The refused route's controller class: it names the service whose route it is. */
  controller?: unknown;
}

/**
 * Records the guard's refusals (missing capability) in the audit trail (A6). The guard is global,
 * so it has no database of its own: each hosted service registers its outbox as a sink (see
 * DenialOutboxRegistrar) together with its controllers, and a refusal is written to the outbox of
 * the service whose route was refused — or, for a route no service owns, of the first hosted
 * service in configuration order. The relay then delivers it like any other event, so a bus
 * outage loses nothing. If the outbox cannot be written (database down) the refusal still stands:
 * the failure is logged and counted, never turned into a 500.
 */
export class DenialAuditor {
  private readonly sinks = new Map<ServiceName, DenialSink>();
  private readonly owners = new Map<unknown, ServiceName>();
  private readonly unrecorded: Counter<'service'> | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly logger: Logger,
    private readonly opts: { services?: readonly ServiceName[]; metrics?: MetricsService } = {},
  ) {
    if (opts.metrics) {
      this.unrecorded = new Counter({
        name: 'custodian_audit_denials_unrecorded_total',
        help: 'Refused requests whose authz.denied audit event could not be written (the 403 stood); alert on any increase',
        labelNames: ['service'],
        registers: [opts.metrics.registry],
      });
    }
  }

  /** A hosted service's outbox, and the controllers whose refusals belong to it. */
  register(service: ServiceName, sink: DenialSink, controllers: Iterable<unknown>): void {
    this.sinks.set(service, sink);
    for (const controller of controllers) this.owners.set(controller, service);
  }

  /** The service a refusal on this controller is recorded under; undefined when no service registered. */
  serviceFor(controller?: unknown): ServiceName | undefined {
    const owner = controller === undefined ? undefined : this.owners.get(controller);
    if (owner) return owner;
    return (this.opts.services ?? []).find((s) => this.sinks.has(s)) ?? this.sinks.keys().next().value;
  }

  async record(input: DenialRecord): Promise<void> {
    const ctx = requestContext.current();
    const event: AuditEventInput = {
      orgId: input.principal.orgId,
      action: 'authz.denied',
      outcome: 'denied',
      actor: {
        userId: input.principal.userId,
        ...(input.principal.sessionId ? { sessionId: input.principal.sessionId } : {}),
        ...(input.principal.apiKeyId ? { apiKeyId: input.principal.apiKeyId } : {}),
        ...(ctx?.ip ? { ip: ctx.ip.slice(0, 64) } : {}),
      },
      target: { type: 'route', id: input.route.slice(0, 128) },
      details: { missingCapabilities: [...input.missing], layer: input.layer ?? 'capability' },
    };
    const service = this.serviceFor(input.controller);
    const sink = service ? this.sinks.get(service) : undefined;
    try {
      if (sink) await sink(event);
      else await this.publish(event);
    } catch (error) {
      this.logger.error({ err: error, service, route: input.route }, 'denial audit event could not be written; the refusal stands');
      this.unrecorded?.inc({ service: service ?? 'none' });
    }
  }

  /** Only a process that hosts no service (no outbox anywhere) publishes directly, best effort. */
  private async publish(input: AuditEventInput): Promise<void> {
    const ctx = requestContext.current();
    const event: AuditEvent = {
      ...input,
      id: uuidv7(),
      occurredAt: new Date().toISOString(),
      service: 'auth-guard',
      actor: input.actor ?? {},
      ...(ctx?.requestId ? { requestId: ctx.requestId } : {}),
    };
    await this.bus.publish(AuditEventRecorded, event, { messageId: event.id });
  }
}
