import { Type, type Static } from '@sinclair/typebox';

/**
 * Every error that crosses a service boundary carries one of these codes. Each transport maps
 * them exhaustively: HTTP (problem+json status below) and the bus (error envelope).
 */
export const ErrorCode = {
  BadRequest: 'bad_request',
  ValidationFailed: 'validation_failed',
  MalformedJson: 'malformed_json',
  ForbiddenKey: 'forbidden_key',
  PayloadTooLarge: 'payload_too_large',
  UnsupportedMediaType: 'unsupported_media_type',
  Unauthenticated: 'unauthenticated',
  InvalidCredentials: 'invalid_credentials',
  Forbidden: 'forbidden',
  NotFound: 'not_found',
  Conflict: 'conflict',
  PreconditionFailed: 'precondition_failed',
  RateLimited: 'rate_limited',
  ServiceUnavailable: 'service_unavailable',
  /** The audit outbox has too many unsent events; changes are refused until it drains (503). */
  AuditBacklog: 'audit_backlog',
  BusTimeout: 'bus_timeout',
  /** The handler did not start its answer within the request deadline; the outcome of a change is unknown (503). */
  RequestTimeout: 'request_timeout',
  BusNoResponders: 'bus_no_responders',
  InvalidMessage: 'invalid_message',
  Internal: 'internal_error',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export const ERROR_HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  bad_request: 400,
  validation_failed: 400,
  malformed_json: 400,
  forbidden_key: 400,
  payload_too_large: 413,
  unsupported_media_type: 415,
  unauthenticated: 401,
  invalid_credentials: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  precondition_failed: 412,
  rate_limited: 429,
  service_unavailable: 503,
  audit_backlog: 503,
  bus_timeout: 504,
  request_timeout: 503,
  bus_no_responders: 503,
  invalid_message: 502,
  internal_error: 500,
};

export const ERROR_TITLES: Readonly<Record<ErrorCode, string>> = {
  bad_request: 'Bad request',
  validation_failed: 'Validation failed',
  malformed_json: 'Malformed JSON',
  forbidden_key: 'Forbidden key in input',
  payload_too_large: 'Payload too large',
  unsupported_media_type: 'Unsupported media type',
  unauthenticated: 'Authentication required',
  invalid_credentials: 'Invalid credentials',
  forbidden: 'Forbidden',
  not_found: 'Not found',
  conflict: 'Conflict',
  precondition_failed: 'Precondition failed',
  rate_limited: 'Too many requests',
  service_unavailable: 'Service unavailable',
  audit_backlog: 'Audit backlog',
  bus_timeout: 'Upstream service timed out',
  request_timeout: 'Request timed out',
  bus_no_responders: 'Upstream service unavailable',
  invalid_message: 'Invalid message from upstream service',
  internal_error: 'Internal error',
};

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_HTTP_STATUS, value);
}

/** The typed error envelope that crosses the bus. */
export const ErrorEnvelopeSchema = Type.Object(
  {
    code: Type.String({ maxLength: 64 }),
    message: Type.String({ maxLength: 2000 }),
    details: Type.Optional(Type.Unknown()),
    requestId: Type.Optional(Type.String({ maxLength: 128 })),
  },
  { additionalProperties: false },
);
export type ErrorEnvelope = Static<typeof ErrorEnvelopeSchema>;

/** RFC 9457 problem document served at the HTTP edge. */
export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  requestId: string;
  details?: unknown;
}

export const PROBLEM_TYPE_BASE = 'https://custodian.dev/problems/';
