import { ERROR_HTTP_STATUS, ERROR_TITLES, PROBLEM_TYPE_BASE, type ErrorCode, type ProblemDocument } from '@custodian/contracts';
import type { Response } from 'express';
import { requestContext } from '../context/request-context';

/**
 * Writes a problem+json answer from an edge middleware (rate limit, deadline), which runs before
 * Nest's exception filter could: the same document shape as `ProblemFilter`.
 */
export function sendProblem(res: Response, code: ErrorCode, detail: string, details?: unknown): void {
  const status = ERROR_HTTP_STATUS[code];
  const body: ProblemDocument = {
    type: `${PROBLEM_TYPE_BASE}${code}`,
    title: ERROR_TITLES[code],
    status,
    code,
    detail,
    requestId: requestContext.requestId() ?? String(res.getHeader('x-request-id') ?? ''),
    ...(details === undefined ? {} : { details }),
  };
  res.status(status).type('application/problem+json').send(JSON.stringify(body));
}
