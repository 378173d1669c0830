import { Inject, Injectable } from '@nestjs/common';
import {
  ErrorCode,
  GetAuditVisibility,
  MAX_AUDIT_VISIBILITY_REFS,
  type AuditReader,
  type AuditVisibility,
  type PrincipalSnapshot,
} from '@custodian/contracts';
import { BUS, CustodianException, LOGGER, type Bus } from '@custodian/platform';
import type { Logger } from 'pino';
import { AuditViewFilter, subjectsOf } from './audit-view-filter';

/** The credential the audit service authenticated, as the objects service asks identity about it. */
export function readerOf(p: PrincipalSnapshot): AuditReader {
  return {
    userId: p.userId,
    orgId: p.orgId,
    ...(p.sessionId ? { sessionId: p.sessionId } : {}),
    ...(p.apiKeyId ? { apiKeyId: p.apiKeyId } : {}),
    ...(p.agent ? { delegation: { clientId: p.agent.clientId, name: p.agent.name, scopes: [...p.agent.scopes] } } : {}),
  };
}

/**
 * Asks the objects service, once per batch of events, what the reader may see of the records and
 * objects they name (docs/adr/0012). Fails closed: without an answer nothing is shown (503).
 */
@Injectable()
export class AuditVisibilityClient {
  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async filterFor(principal: PrincipalSnapshot, events: Array<Record<string, unknown>>): Promise<AuditViewFilter> {
    return this.filterForReader(readerOf(principal), events);
  }

  /** The same, for a reader another service names (GetAuditProof's `viewer`). */
  async filterForReader(reader: AuditReader, events: Array<Record<string, unknown>>): Promise<AuditViewFilter> {
    const { objects, records } = subjectsOf(events);
    const n = MAX_AUDIT_VISIBILITY_REFS;
    // Always at least one question: whether the reader's access hides anything decides the hashes too.
    const requests = Array.from({ length: Math.max(1, Math.ceil(records.length / n), Math.ceil(objects.length / n)) }, (_, i) => ({
      reader,
      objects: objects.slice(i * n, (i + 1) * n),
      records: records.slice(i * n, (i + 1) * n),
    }));
    let answers: AuditVisibility[];
    try {
      answers = await Promise.all(requests.map((r) => this.bus.request(GetAuditVisibility, r)));
    } catch (err) {
      this.logger.warn({ err }, 'audit view: the objects service did not answer the visibility question');
      throw new CustodianException(
        ErrorCode.ServiceUnavailable,
        'The audit log cannot be shown now: the service that applies your record and field access did not answer',
      );
    }
    return new AuditViewFilter({
      unrestricted: answers.every((a) => a.unrestricted),
      objects: Object.assign({}, ...answers.map((a) => a.objects)) as AuditVisibility['objects'],
      readable: answers.flatMap((a) => a.readable),
    });
  }
}
