import { CustodianApiError } from '@custodian/client';

/** An error answer of the API, kept whole so the page can show its `code` and `requestId`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly requestId: string | undefined,
    readonly detail: string | undefined,
    readonly details: unknown,
  ) {
    super(detail ? `${code}: ${detail}` : code);
    this.name = 'ApiError';
  }
}

/**
 * Builds an ApiError from any failed response body: problem+json when the server sent one, and a
 * stand-in code otherwise (a proxy's HTML page, a dropped connection) so the user still sees something.
 */
export function toApiError(status: number, body: unknown, headerRequestId?: string | null): ApiError {
  const p = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  const code = typeof p.code === 'string' ? p.code : status === 0 ? 'network_error' : `http_${status}`;
  const requestId = typeof p.requestId === 'string' ? p.requestId : (headerRequestId ?? undefined);
  const detail = typeof p.detail === 'string' ? p.detail : typeof p.title === 'string' ? p.title : undefined;
  return new ApiError(status, code, requestId, detail, p.details);
}

/**
 * The error as the problem display shows it: the console's own ApiError as is, and the typed client's
 * CustodianApiError (a caller that used packages/client without the session's fetch) carried over with
 * the same code, status, request id and detail; anything else (a bug in a page) is not an API error.
 */
export function asApiError(error: unknown): ApiError | undefined {
  if (error instanceof ApiError) return error;
  if (error instanceof CustodianApiError)
    return new ApiError(error.status, error.code, error.requestId, error.detail || undefined, error.details);
  return undefined;
}
