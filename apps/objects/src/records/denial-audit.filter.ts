import { Catch, Inject, Injectable, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import {
  CustodianException,
  DenialAuditor,
  LOGGER,
  OutboxWriter,
  ProblemFilter,
  SERVICE_DATA_SOURCE,
  isDenialAudited,
  rateLimited,
  type DenialSink,
} from '@custodian/platform';
import { isPolicyError } from '@custodian/policy';
import type { Request } from 'express';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';

/** What a refusal says about itself, for the audit trail (codes and names only, never values). */
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
 * A6: every refused object, record, field or filter request is audited as `authz.denied`
 * (O1: another org's id is a 404 *and* an audit event). Written through the outbox in its own
 * transaction, by way of the DenialAuditor: identical refusals of one credential are aggregated
 * into one event with a count, and a credential over its refusal budget is answered 429 instead
 * (docs/adr/0014-denial-aggregation.md). If the write fails the refusal still stands; the auditor
 * logs and counts it. The answer is the usual problem document (ProblemFilter), sent once the audit
 * write has settled.
 *
 * An exception filter rather than an interceptor: it runs only when a request fails. An
 * interceptor wraps every request, successful or not, in rxjs and two async-resource bindings.
 * A refusal the guard already audited (missing capability) is not recorded twice.
 */
@Catch()
@Injectable()
export class DenialAuditFilter implements ExceptionFilter {
  private readonly problems: ProblemFilter;
  private readonly sink: DenialSink;

  constructor(
    @Inject(SERVICE_DATA_SOURCE) ds: DataSource,
    @Inject(OutboxWriter) outbox: OutboxWriter,
    @Inject(DenialAuditor) private readonly denials: DenialAuditor,
    @Inject(LOGGER) logger: Logger,
  ) {
    this.problems = new ProblemFilter(logger);
    this.sink = async (event) => {
      await ds.transaction((m) => outbox.append(m, event));
    };
  }

  catch(exception: unknown, host: ArgumentsHost): void {
    const req = host.switchToHttp().getRequest<Request & { principal?: PrincipalSnapshot }>();
    const d = host.getType() === 'http' && !isDenialAudited(exception) ? denial(exception) : undefined;
    const principal = req.principal;
    if (!d || !principal) return this.problems.catch(exception, host);
    const object =
      typeof req.params?.object === 'string' ? req.params.object : typeof req.params?.name === 'string' ? req.params.name : 'query';
    const id = typeof req.params?.id === 'string' ? req.params.id : undefined;
    void this.denials
      .recordRefusal(
        principal,
        {
          orgId: principal.orgId,
          action: 'authz.denied',
          outcome: 'denied',
          target: { type: object.slice(0, 64), ...(id ? { id: id.slice(0, 128) } : {}) },
          details: { ...d, route: `${req.method} ${req.route?.path ?? ''}`.slice(0, 200) },
        },
        'objects',
        this.sink,
      )
      // recordRefusal never rejects (a failed write is counted and logged there); the refusal stands either way.
      .then((verdict) => this.problems.catch(verdict.limited ? rateLimited(verdict.retryAfterSeconds) : exception, host));
  }
}
