import { type ErrorCode, ErrorCode as Codes } from '@custodian/contracts';

/**
 * The one exception type of the platform: a string code from the contracts enum, a message that
 * is safe to show a caller, and optional structured details. Transports map it exhaustively.
 */
export class CustodianException extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    readonly upstreamRequestId?: string,
  ) {
    super(message);
    this.name = 'CustodianException';
  }

  static unauthenticated(message = 'Authentication required'): CustodianException {
    return new CustodianException(Codes.Unauthenticated, message);
  }

  static forbidden(message = 'Not allowed', details?: unknown): CustodianException {
    return new CustodianException(Codes.Forbidden, message, details);
  }

  static notFound(message = 'Not found'): CustodianException {
    return new CustodianException(Codes.NotFound, message);
  }
}
