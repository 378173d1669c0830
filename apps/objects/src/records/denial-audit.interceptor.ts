import { Inject, Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { CustodianException, LOGGER, OutboxWriter, SERVICE_DATA_SOURCE } from '@custodian/platform';
import { isPolicyError } from '@custodian/policy';
import type { Request } from 'express';
import type { Logger } from 'pino';
import { catchError, from, mergeMap, throwError, type Observable } from 'rxjs';
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
 * transaction; if that fails the refusal still stands and the failure is logged.
 */
@Injectable()
export class DenialAuditInterceptor implements NestInterceptor {
  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = context.switchToHttp().getRequest<Request & { principal?: PrincipalSnapshot }>();
    return next.handle().pipe(
      catchError((error: unknown) => {
        const d = denial(error);
        if (!d || !req.principal) return throwError(() => error);
        const principal = req.principal;
        const object =
          typeof req.params?.object === 'string' ? req.params.object : typeof req.params?.name === 'string' ? req.params.name : 'query';
        const id = typeof req.params?.id === 'string' ? req.params.id : undefined;
        return from(
          this.ds
            .transaction((m) =>
              this.outbox.append(m, {
                orgId: principal.orgId,
                action: 'authz.denied',
                outcome: 'denied',
                target: { type: object.slice(0, 64), ...(id ? { id: id.slice(0, 128) } : {}) },
                details: { ...d, route: `${req.method} ${req.route?.path ?? ''}`.slice(0, 200) },
              }),
            )
            .catch((auditError: unknown) => this.logger.error({ err: auditError }, 'denial audit event could not be written')),
        ).pipe(mergeMap(() => throwError(() => error)));
      }),
    );
  }
}
