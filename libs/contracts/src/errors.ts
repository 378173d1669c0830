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
  /** OIDC sign-in (docs/sso.md): each refusal of the flow has its own code. */
  OidcStateInvalid: 'oidc_state_invalid',
  OidcProviderError: 'oidc_provider_error',
  OidcProviderUnavailable: 'oidc_provider_unavailable',
  OidcNonceMismatch: 'oidc_nonce_mismatch',
  OidcIssuerMismatch: 'oidc_issuer_mismatch',
  OidcAudienceMismatch: 'oidc_audience_mismatch',
  OidcSignatureInvalid: 'oidc_signature_invalid',
  OidcTokenExpired: 'oidc_token_expired',
  OidcTokenInvalid: 'oidc_token_invalid',
  OidcEmailNotVerified: 'oidc_email_not_verified',
  OidcEmailDomainNotAllowed: 'oidc_email_domain_not_allowed',
  OidcLinkNotAllowed: 'oidc_link_not_allowed',
  OidcUserNotProvisioned: 'oidc_user_not_provisioned',
  PasswordLoginDisabled: 'password_login_disabled',
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
  oidc_state_invalid: 400,
  oidc_provider_error: 401,
  oidc_provider_unavailable: 502,
  oidc_nonce_mismatch: 401,
  oidc_issuer_mismatch: 401,
  oidc_audience_mismatch: 401,
  oidc_signature_invalid: 401,
  oidc_token_expired: 401,
  oidc_token_invalid: 401,
  oidc_email_not_verified: 403,
  oidc_email_domain_not_allowed: 403,
  oidc_link_not_allowed: 403,
  oidc_user_not_provisioned: 403,
  password_login_disabled: 403,
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
  oidc_state_invalid: 'Sign-in state missing, expired or not matching',
  oidc_provider_error: 'The identity provider refused the sign-in',
  oidc_provider_unavailable: 'The identity provider could not be reached',
  oidc_nonce_mismatch: 'ID token nonce does not match',
  oidc_issuer_mismatch: 'ID token issuer does not match',
  oidc_audience_mismatch: 'ID token audience does not match',
  oidc_signature_invalid: 'ID token signature is invalid',
  oidc_token_expired: 'ID token expired',
  oidc_token_invalid: 'ID token is invalid',
  oidc_email_not_verified: 'Email address not verified by the identity provider',
  oidc_email_domain_not_allowed: 'Email domain not allowed',
  oidc_link_not_allowed: 'Linking to the existing account is not allowed',
  oidc_user_not_provisioned: 'No account for this identity',
  password_login_disabled: 'Password sign-in is switched off for this organization',
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
