import { Inject, Injectable } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { CustodianException, DenialAuditor, OutboxWriter, SERVICE_DATA_SOURCE, rateLimited, type DenialSink } from '@custodian/platform';
import { isPolicyError } from '@custodian/policy';
import type { DataSource } from 'typeorm';

/** What a refusal says about itself in the audit trail (codes and names only, never values). */
function denial(error: unknown): { reason: string; field?: string; action?: string } | undefined {
  if (isPolicyError(error) && (error.status === 403 || error.status === 404)) {
    const d = error.details as { field?: unknown; action?: unknown };
    return {
      reason: error.code,
      ...(typeof d.field === 'string' ? { field: d.field.slice(0, 64) } : {}),
      ...(typeof d.action === 'string' ? { action: d.action.slice(0, 32) } : {}),
    };
  }
  if (error instanceof CustodianException && (error.code === 'not_found' || error.code === 'forbidden')) return { reason: error.code };
  return undefined;
}

/**
 * Governed reads refused over the bus are audited exactly like the REST routes' refusals (the
 * records API's DenialAuditFilter): one `authz.denied` per kind of refusal and credential, through
 * the same DenialAuditor, so an agent probing hidden fields through its tools leaves the same trail
 * and meets the same per-credential refusal budget (429 beyond it).
 */
@Injectable()
export class GovernedRefusals {
  private readonly sink: DenialSink;

  constructor(
    @Inject(DenialAuditor) private readonly denials: DenialAuditor,
    @Inject(SERVICE_DATA_SOURCE) ds: DataSource,
    @Inject(OutboxWriter) outbox: OutboxWriter,
  ) {
    this.sink = async (event) => {
      await ds.transaction((m) => outbox.append(m, event));
    };
  }

  /** Records `error` when it is a refusal and answers what the caller throws: the refusal, or 429. */
  async audited(error: unknown, principal: PrincipalSnapshot, subject: string, target: { type: string; id?: string }): Promise<unknown> {
    const d = denial(error);
    if (!d) return error;
    // recordRefusal never rejects (a failed write is counted and logged there); the refusal stands either way.
    const verdict = await this.denials.recordRefusal(
      principal,
      {
        orgId: principal.orgId,
        action: 'authz.denied',
        outcome: 'denied',
        target: { type: target.type.slice(0, 64), ...(target.id ? { id: target.id.slice(0, 128) } : {}) },
        details: { ...d, route: `bus ${subject}` },
      },
      'objects',
      this.sink,
    );
    return verdict.limited ? rateLimited(verdict.retryAfterSeconds) : error;
  }
}
