import { GetPrincipalSnapshot, type PrincipalSnapshot, type RecordOperationResult, type Requester } from '@custodian/contracts';
import { CustodianException, requestContext, type Bus } from '@custodian/platform';
import { isPolicyError } from '@custodian/policy';

/** The answer when the requester is no longer an active member: no permission is left (P1). */
export const REQUESTER_INACTIVE = {
  outcome: 'forbidden',
  code: 'requester_inactive',
  message: 'The requester is no longer allowed to act in this organization',
} as const;

/** Refusals of the objects code path as the outcome a dry-run / apply answers. */
export const OUTCOME_BY_CODE: Readonly<Record<string, 'not_found' | 'forbidden' | 'conflict' | 'invalid' | 'stale'>> = {
  not_found: 'not_found',
  forbidden: 'forbidden',
  unauthenticated: 'forbidden',
  conflict: 'conflict',
  validation_failed: 'invalid',
  bad_request: 'invalid',
  precondition_failed: 'stale',
};

/** A refusal as the contract's outcome of a dry-run / apply; anything else stays an error (transport envelope). */
export function refusalOutcome(error: unknown): RecordOperationResult | undefined {
  if (isPolicyError(error)) {
    const outcome = error.status === 404 ? 'not_found' : error.status === 403 ? 'forbidden' : error.status === 409 ? 'stale' : 'invalid';
    return { outcome, code: error.code, message: `refused by the access policy (${error.code})` };
  }
  if (error instanceof CustodianException) {
    const outcome = OUTCOME_BY_CODE[error.code];
    if (outcome) return { outcome, code: error.code, message: error.message.slice(0, 2000) };
  }
  return undefined;
}

/**
 * Runs an operation for approvals as its requester: the principal is rebuilt by identity now (the
 * user ∩ the stored agent delegation, or `delegation` when the caller narrows or widens it on
 * purpose), and the operation runs in that principal's request context, so it is decided and
 * audited exactly as the requester's own REST call would be.
 */
export async function asRequester<R>(
  bus: Bus,
  requester: Requester,
  run: (principal: PrincipalSnapshot) => Promise<R>,
  delegation: Requester['agent'] = requester.agent,
): Promise<R | typeof REQUESTER_INACTIVE> {
  let principal: PrincipalSnapshot;
  try {
    principal = await bus.request(GetPrincipalSnapshot, {
      userId: requester.userId,
      orgId: requester.orgId,
      ...(delegation ? { delegation } : {}),
    });
  } catch (error) {
    if (error instanceof CustodianException && ['unauthenticated', 'not_found', 'forbidden'].includes(error.code))
      return REQUESTER_INACTIVE;
    throw error;
  }
  return requestContext.run({ requestId: requestContext.requestId() ?? `bus-${Date.now()}`, principal }, () => run(principal));
}
