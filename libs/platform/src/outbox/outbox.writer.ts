import { AuditEventRecorded, AuditEventSchema, ErrorCode, type AuditEvent, type ServiceName } from '@custodian/contracts';
import type { EntityManager } from 'typeorm';
import { CustodianException } from '../errors/custodian.exception';
import { requestContext } from '../context/request-context';
import { encodeControlChars } from '../validation/encode-control-chars';
import { validate } from '../validation/schema-validator';
import { auditHashKey, redactSecrets } from './audit-redaction';
import { OutboxEntity } from './outbox.entity';
import { uuidv7 } from './uuidv7';

export type AuditEventInput = Omit<AuditEvent, 'id' | 'occurredAt' | 'service' | 'requestId' | 'actor'> & {
  actor?: AuditEvent['actor'];
};

/**
 * The audit pipeline is behind: the change is refused rather than letting the outbox grow without
 * bound (F5). A CustodianException with its own code, so the HTTP edge answers 503 `audit_backlog`
 * with Retry-After and the reason in the body, and a bus reply carries the same code.
 */
export class OutboxBackpressureError extends CustodianException {
  constructor(
    readonly backlog: number,
    readonly limit: number,
  ) {
    super(ErrorCode.AuditBacklog, `audit backlog: ${backlog} unsent events (limit ${limit}); nothing was changed, retry later`, {
      unsent: backlog,
      limit,
    });
    this.name = 'OutboxBackpressureError';
  }
}

/** Unsent outbox rows at which new appends are refused (see OutboxWriter.setMaxBacklog). */
export const DEFAULT_MAX_BACKLOG = 10_000;

/** The action of refusal events, which stop at half the backlog limit (OutboxWriter.denialBacklogLimit). */
const DENIAL_ACTION = 'authz.denied';

/**
 * Appends audit events to the service's outbox inside the caller's transaction. Actor, request id
 * and time come from the request context, so call sites state only what happened. Secret-looking
 * values in `details` become keyed hashes before the row is written (A5, audit-redaction.ts), and
 * control characters (NUL, which jsonb refuses, among them) are written as visible `\uXXXX` text,
 * as the audit store does anyway, so no request input can make the insert fail.
 *
 * Refusals (`authz.denied`) are refused at half the backlog limit: anyone with a login can produce
 * them, so they alone can never fill the outbox to the point where changes answer 503. The denial
 * auditor counts what it could not write (custodian_audit_denials_unrecorded_total).
 */
export class OutboxWriter {
  private readonly listeners = new Set<() => void>();

  private readonly hashKey: Buffer;
  /** Unsent rows as last counted by the relay; appends are refused at maxBacklog (F5 backpressure). */
  private backlog = 0;
  private maxBacklog = DEFAULT_MAX_BACKLOG;

  /** `hashKey`: the HMAC key for secrets (auditHashKey(masterKey)); random per process when absent. */
  constructor(
    private readonly service: ServiceName,
    hashKey?: Buffer,
  ) {
    this.hashKey = hashKey ?? auditHashKey();
  }

  async append(manager: EntityManager, input: AuditEventInput): Promise<AuditEvent> {
    const event = this.prepare(input);
    await manager
      .createQueryBuilder()
      .insert()
      .into(OutboxEntity)
      .values({ id: event.id, subject: AuditEventRecorded.subject, payload: () => ':payload' })
      .setParameter('payload', JSON.stringify(event))
      .execute();
    this.appended();
    return event;
  }

  /**
   * The event `append` would write — backpressure, redaction, control characters and schema checked
   * the same way — for a caller that inserts the outbox row itself, in one statement with the
   * writes it belongs to (`id`, `subject` = AuditEventRecorded.subject, `payload` = the event as
   * JSON). The caller calls `appended()` once that statement ran.
   */
  prepare(input: AuditEventInput): AuditEvent {
    const limit = input.action === DENIAL_ACTION ? this.denialBacklogLimit : this.maxBacklog;
    if (this.backlog >= limit) throw new OutboxBackpressureError(this.backlog, limit);
    const ctx = requestContext.current();
    const assembled: AuditEvent = {
      id: uuidv7(),
      occurredAt: new Date().toISOString(),
      service: this.service,
      requestId: ctx?.requestId,
      ...input,
      ...(input.details ? { details: redactSecrets(input.details, this.hashKey) } : {}),
      actor: {
        ...(ctx?.principal ? { userId: ctx.principal.userId, sessionId: ctx.principal.sessionId, apiKeyId: ctx.principal.apiKeyId } : {}),
        ...(agentOf(ctx?.principal) ? { agent: agentOf(ctx?.principal) } : {}),
        ...(ctx?.ip ? { ip: ctx.ip } : {}),
        ...(ctx?.userAgent ? { userAgent: ctx.userAgent.slice(0, 512) } : {}),
        ...input.actor,
      },
    };
    const event = encodeControlChars(assembled);
    for (const key of Object.keys(event.actor) as Array<keyof AuditEvent['actor']>) {
      if (event.actor[key] === undefined) delete event.actor[key];
    }
    if (event.requestId === undefined) delete event.requestId;
    const check = validate(AuditEventSchema, event);
    if (!check.ok) {
      throw new CustodianException(ErrorCode.Internal, 'Audit event does not match its schema', { issues: check.issues });
    }
    return event;
  }

  /** Wakes the relay once the surrounding transaction has had a chance to commit. */
  appended(): void {
    setImmediate(() => this.listeners.forEach((l) => l()));
  }

  /** Called by the relay after each pass with the number of rows still unsent. */
  reportBacklog(unsent: number): void {
    this.backlog = unsent;
  }

  /** Sets how many unsent rows make appends (and so the changes they belong to) fail with 503. */
  setMaxBacklog(max: number): void {
    this.maxBacklog = Math.max(1, Math.floor(max));
  }

  get maxBacklogSize(): number {
    return this.maxBacklog;
  }

  /** Unsent rows at which refusal events are no longer written (half the limit, at least 1). */
  get denialBacklogLimit(): number {
    return Math.max(1, Math.floor(this.maxBacklog / 2));
  }

  /** Unsent rows as last counted by the relay. */
  get backlogSize(): number {
    return this.backlog;
  }

  onAppend(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** The agent of a delegated principal, if any (read structurally: the snapshot schema evolves with identity). */
export function agentOf(principal: unknown): NonNullable<AuditEvent['actor']['agent']> | undefined {
  const agent = (principal as { agent?: { clientId?: unknown; name?: unknown; scopes?: unknown } } | undefined)?.agent;
  if (!agent || typeof agent.clientId !== 'string') return undefined;
  return {
    clientId: agent.clientId,
    ...(typeof agent.name === 'string' ? { name: agent.name } : {}),
    ...(Array.isArray(agent.scopes) ? { scopes: agent.scopes.filter((s): s is string => typeof s === 'string') } : {}),
  };
}

export { KEYED_HASH_PREFIX, auditHashKey, isSecretKey, keyedHash, redactSecrets } from './audit-redaction';
