import { randomUUID } from 'node:crypto';
import { ErrorCode, isErrorCode, type EventContract, type RequestContract } from '@custodian/contracts';
import { POLICY_ERROR_STATUS, PolicyError, isPolicyError, type PolicyErrorCode } from '@custodian/policy';
import type { Logger } from 'pino';
import { CustodianException } from '../errors/custodian.exception';
import { requestContext } from '../context/request-context';
import { serverSpan } from '../tracing/tracing';
import { validate } from '../validation/schema-validator';
import type { ReplyEnvelope, RequestHandler } from './bus';

/** Shared by both bus implementations so they validate, wrap and unwrap in exactly the same way. */
export class BusCodec {
  constructor(private readonly logger: Logger) {}

  encode(value: unknown): Uint8Array {
    return Buffer.from(JSON.stringify(value));
  }

  decode(data: Uint8Array): unknown {
    return JSON.parse(Buffer.from(data).toString('utf8'));
  }

  /** Caller side: validate what we send (a bug here is ours, not the peer's). */
  checkOutgoingRequest(contract: RequestContract, payload: unknown): void {
    const result = validate(contract.request, payload);
    if (!result.ok) {
      throw new CustodianException(ErrorCode.InvalidMessage, `Request for ${contract.subject} does not match its contract`, {
        issues: result.issues,
      });
    }
  }

  /**
   * Responder side: run the handler on a validated payload, in the caller's request context (and,
   * when tracing, in a span that continues the caller's trace from `traceCarrier`).
   */
  async answer(
    contract: RequestContract,
    handler: RequestHandler<RequestContract>,
    raw: Uint8Array,
    requestId: string | undefined,
    traceCarrier?: Record<string, string | undefined>,
  ): Promise<ReplyEnvelope> {
    const rid = requestId ?? randomUUID();
    return requestContext.run({ requestId: rid }, () =>
      serverSpan(`bus handle ${contract.subject}`, traceCarrier, { 'messaging.destination.name': contract.subject }, () =>
        this.run(contract, handler, raw, rid),
      ),
    );
  }

  private async run(
    contract: RequestContract,
    handler: RequestHandler<RequestContract>,
    raw: Uint8Array,
    rid: string,
  ): Promise<ReplyEnvelope> {
    try {
      let payload: unknown;
      try {
        payload = this.decode(raw);
      } catch {
        throw new CustodianException(ErrorCode.InvalidMessage, 'Request is not valid JSON');
      }
      const check = validate(contract.request, payload);
      if (!check.ok) {
        throw new CustodianException(ErrorCode.InvalidMessage, `Request for ${contract.subject} does not match its contract`, {
          issues: check.issues,
        });
      }
      const data = await handler(check.value, { requestId: rid });
      return { ok: true, data };
    } catch (error) {
      return { ok: false, error: this.toEnvelope(error, rid, contract.subject) };
    }
  }

  /** Caller side: unwrap the reply, validate data against the response schema, rethrow errors typed. */
  unwrapReply(contract: RequestContract, raw: Uint8Array): unknown {
    let reply: ReplyEnvelope;
    try {
      reply = this.decode(raw) as ReplyEnvelope;
    } catch {
      throw new CustodianException(ErrorCode.InvalidMessage, `Reply for ${contract.subject} is not valid JSON`);
    }
    if (reply && reply.ok === true) {
      const check = validate(contract.response, reply.data);
      if (!check.ok) {
        this.logger.error({ subject: contract.subject, issues: check.issues }, 'reply does not match its contract');
        throw new CustodianException(ErrorCode.InvalidMessage, `Reply for ${contract.subject} does not match its contract`);
      }
      return check.value;
    }
    if (reply && reply.ok === false && reply.error && typeof reply.error === 'object') {
      const { code, message, details, requestId } = reply.error;
      // A refusal of the access policy keeps its precise code (and so its status) across the wire.
      if (!isErrorCode(code) && isPolicyErrorCode(code))
        throw new PolicyError(
          code,
          details !== null && typeof details === 'object' && !Array.isArray(details) ? (details as Record<string, unknown>) : {},
        );
      const known = isErrorCode(code) ? code : ErrorCode.Internal;
      throw new CustodianException(known, typeof message === 'string' ? message.slice(0, 2000) : 'Upstream error', details, requestId);
    }
    throw new CustodianException(ErrorCode.InvalidMessage, `Reply for ${contract.subject} has no envelope`);
  }

  checkEvent(contract: EventContract, payload: unknown): { ok: true; value: unknown } | { ok: false; issues: unknown } {
    return validate(contract.payload, payload);
  }

  private toEnvelope(
    error: unknown,
    requestId: string,
    subject: string,
  ): { code: string; message: string; details?: unknown; requestId: string } {
    if (error instanceof CustodianException) {
      return { code: error.code, message: error.message, details: error.details, requestId };
    }
    if (isPolicyError(error)) {
      return { code: error.code, message: `refused by the access policy (${error.code})`, details: error.details, requestId };
    }
    // Unknown errors never cross the wire with their text: the detail stays in this log.
    this.logger.error({ err: error, subject }, 'bus handler failed');
    return { code: ErrorCode.Internal, message: 'Internal error', requestId };
  }
}

function isPolicyErrorCode(code: unknown): code is PolicyErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(POLICY_ERROR_STATUS, code);
}
