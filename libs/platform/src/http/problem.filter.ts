import { Catch, HttpException, HttpStatus, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { ERROR_HTTP_STATUS, ERROR_TITLES, ErrorCode, PROBLEM_TYPE_BASE, type ProblemDocument } from '@custodian/contracts';
import { isPolicyError } from '@custodian/policy';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { isInvalidValueError, isTransientDatabaseError, pgCode } from '../database/pg-errors';
import { CustodianException } from '../errors/custodian.exception';
import { requestContext } from '../context/request-context';

/** Maps Nest's own HTTP errors (routing, body parsing) onto our codes. */
function codeForHttpStatus(status: number, error: HttpException): ErrorCode {
  const cause = (error.getResponse() as { message?: unknown }) ?? {};
  switch (status) {
    case HttpStatus.NOT_FOUND:
      return ErrorCode.NotFound;
    case HttpStatus.PAYLOAD_TOO_LARGE:
      return ErrorCode.PayloadTooLarge;
    case HttpStatus.UNAUTHORIZED:
      return ErrorCode.Unauthenticated;
    case HttpStatus.FORBIDDEN:
      return ErrorCode.Forbidden;
    case HttpStatus.TOO_MANY_REQUESTS:
      return ErrorCode.RateLimited;
    case HttpStatus.BAD_REQUEST:
      return /JSON/i.test(String(cause.message)) ? ErrorCode.MalformedJson : ErrorCode.BadRequest;
    default:
      return status >= 500 ? ErrorCode.Internal : ErrorCode.BadRequest;
  }
}

/**
 * Every error leaves as application/problem+json with a code and the request id. Unknown errors
 * become a generic 500; their detail goes to the log only.
 */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const response = http.getResponse<Response>();
    const request = http.getRequest<Request>();
    const requestId = requestContext.requestId() ?? String(response.getHeader('x-request-id') ?? '');
    let code: ErrorCode;
    let detail: string;
    let details: unknown;
    let status: number;
    let policyCode: string | undefined;
    if (isPolicyError(exception)) {
      // Decision-library errors keep their own precise code (field_not_readable, filter_too_deep, ...).
      status = exception.status;
      code =
        status === 403
          ? ErrorCode.Forbidden
          : status === 404
            ? ErrorCode.NotFound
            : status === 409
              ? ErrorCode.Conflict
              : status >= 500
                ? ErrorCode.ServiceUnavailable
                : ErrorCode.BadRequest;
      policyCode = exception.code;
      detail = policyDetail(exception.code);
      details = exception.details;
    } else if (exception instanceof CustodianException) {
      code = exception.code;
      status = ERROR_HTTP_STATUS[code];
      detail = exception.message;
      details = exception.details;
      if (status >= 500) this.logger.warn({ err: exception, upstreamRequestId: exception.upstreamRequestId }, 'request failed');
      // Overload and outages are temporary: tell clients when to come back rather than hang (F5);
      // a rate limit that knows when its window ends says so (details.retryAfterSeconds).
      if (status === 429 || status === 503) response.setHeader('Retry-After', String(retryAfterSeconds(details)));
    } else if (exception instanceof HttpException) {
      status = exception.getStatus();
      code = codeForHttpStatus(status, exception);
      detail = status === HttpStatus.NOT_FOUND ? 'No such resource' : ERROR_TITLES[code];
      if (status >= 500) this.logger.error({ err: exception }, 'request failed');
    } else if (isTransientDatabaseError(exception)) {
      // The database is down, refused us (e.g. the audit outbox cannot be written), or asked for a retry.
      code = ErrorCode.ServiceUnavailable;
      status = 503;
      detail = 'The service cannot complete the request right now; nothing was changed. Retry later.';
      response.setHeader('Retry-After', '1');
      this.logger.error({ err: exception, method: request.method, path: request.path }, 'database unavailable');
    } else if (isInvalidValueError(exception)) {
      // A value PostgreSQL could not read as its column's type. Input checks refuse such values
      // before SQL; this is the net under them, so it is worth a warning (without a stack), not an error.
      code = ErrorCode.ValidationFailed;
      status = 400;
      detail = 'A value in the request does not fit the type of its field';
      this.logger.warn({ sqlState: pgCode(exception), method: request.method, path: request.path }, 'data error from the database');
    } else if (isBodyParserError(exception)) {
      ({ status, code, detail } = bodyProblem(exception));
    } else {
      code = ErrorCode.Internal;
      status = 500;
      detail = 'An internal error occurred; quote the request id when reporting it';
      this.logger.error({ err: exception, method: request.method, path: request.path }, 'unhandled error');
    }
    const body: ProblemDocument = {
      type: `${PROBLEM_TYPE_BASE}${policyCode ?? code}`,
      title: ERROR_TITLES[code],
      status,
      code: policyCode ?? code,
      detail,
      requestId,
      ...(details === undefined ? {} : { details }),
    };
    if (response.headersSent) return;
    response.status(status).type('application/problem+json').send(JSON.stringify(body));
  }
}

/** Whole seconds from `details.retryAfterSeconds` when it is a positive number, else 1. */
function retryAfterSeconds(details: unknown): number {
  const value = (details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
  return typeof value === 'number' && Number.isFinite(value) && value >= 1 ? Math.min(86_400, Math.ceil(value)) : 1;
}

function policyDetail(code: string): string {
  return `The request was refused by the access policy (${code.replace(/_/g, ' ')})`;
}

/**
 * Errors of body-parser (http-errors): a 4xx `status`, `expose: true`, usually a `type`. A body
 * whose Content-Encoding does not decode comes from zlib wrapped without a `type`, so the status
 * decides, not the type.
 */
function isBodyParserError(e: unknown): e is { status: number; type?: string } {
  if (typeof e !== 'object' || e === null) return false;
  const status = (e as { status?: unknown }).status;
  if (typeof status !== 'number' || status < 400 || status > 499) return false;
  return typeof (e as { type?: unknown }).type === 'string' || (e as { expose?: unknown }).expose === true;
}

function bodyProblem(e: { status: number; type?: string }): { status: number; code: ErrorCode; detail: string } {
  switch (e.status) {
    case 413:
      return { status: 413, code: ErrorCode.PayloadTooLarge, detail: 'The request body is too large' };
    case 415:
      return {
        status: 415,
        code: ErrorCode.UnsupportedMediaType,
        detail:
          e.type === 'charset.unsupported'
            ? 'The request body has an unsupported charset'
            : 'The request body has an unsupported Content-Encoding (identity, gzip, deflate and br are read)',
      };
    default:
      if (e.type === 'entity.parse.failed')
        return { status: 400, code: ErrorCode.MalformedJson, detail: 'The request body is not valid JSON' };
      if (e.type === undefined || e.type === 'encoding.unsupported')
        return { status: 400, code: ErrorCode.BadRequest, detail: 'The request body does not decode as its Content-Encoding says' };
      return { status: 400, code: ErrorCode.BadRequest, detail: 'The request body could not be read' };
  }
}
