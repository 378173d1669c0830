/**
 * Every failure of the policy library is a PolicyError with a string code from this table, an HTTP
 * status the transports map to problem+json, and structured details. No free-text-only errors.
 */
export const POLICY_ERROR_STATUS = {
  /** Malformed input (shape, type) — 400. */
  invalid_input: 400,
  /** `__proto__` / `constructor` / `prototype` as a key anywhere — 400 (O6). */
  forbidden_key: 400,
  /** A name (object, field, rule) that is not a plain identifier — 400 (O5). */
  invalid_name: 400,
  /** ObjectQL: unknown operator or operator in field position — 400 (O5). */
  unknown_operator: 400,
  /** ObjectQL: value of the wrong type / not allowed for the operator — 400. */
  invalid_value: 400,
  /** ObjectQL: filter nested deeper than the limit — 400 (R8). */
  filter_too_deep: 400,
  /** ObjectQL: more nodes than the limit — 400 (R8). */
  filter_too_complex: 400,
  /** ObjectQL: IN list longer than the limit — 400 (R8). */
  in_list_too_long: 400,
  /** ObjectQL: string value longer than the limit — 400 (R8). */
  value_too_long: 400,
  /** A system field (id, org_id, owner_id, created_*, updated_*, version) in a write body — 400. */
  system_field_not_writable: 400,
  /** Filter/sort/group on a field the caller cannot read (or that does not exist) — 403 (R5, O4). */
  field_not_readable: 403,
  /** Write to a field the caller cannot edit (or that does not exist) — 403 (R5). */
  field_not_editable: 403,
  /** The action is not allowed on the object type — 403. */
  action_not_allowed: 403,
  /** The object does not exist for this principal (unknown, or app not accessible) — 404. */
  object_not_found: 404,
  /** A snapshot older than a policy version already seen for the org (R10) — 409. */
  stale_policy: 409,
  /** Object security metadata is inconsistent (bad master-detail, parent cycle, …) — 422. */
  invalid_metadata: 422,
} as const;

export type PolicyErrorCode = keyof typeof POLICY_ERROR_STATUS;

export class PolicyError extends Error {
  readonly status: number;

  constructor(
    readonly code: PolicyErrorCode,
    readonly details: Readonly<Record<string, unknown>> = {},
  ) {
    super(code);
    this.name = 'PolicyError';
    this.status = POLICY_ERROR_STATUS[code];
  }
}

export function isPolicyError(error: unknown, code?: PolicyErrorCode): error is PolicyError {
  return error instanceof PolicyError && (code === undefined || error.code === code);
}
