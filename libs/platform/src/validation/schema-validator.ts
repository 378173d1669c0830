import type { TSchema, Static } from '@sinclair/typebox';
import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { type ErrorCode, ErrorCode as Codes } from '@custodian/contracts';
import { CustodianException } from '../errors/custodian.exception';

const ajv = new Ajv2020({ allErrors: false, strict: false, coerceTypes: false, useDefaults: false });
addFormats(ajv);
const compiled = new WeakMap<object, ValidateFunction>();

function validatorFor(schema: TSchema): ValidateFunction {
  let fn = compiled.get(schema);
  if (!fn) {
    // A schema with an $id may already be registered because another schema embeds it;
    // compiling it again would throw "already exists", so reuse the registered one.
    const id = (schema as { $id?: unknown }).$id;
    fn = (typeof id === 'string' ? ajv.getSchema(id) : undefined) ?? ajv.compile(schema);
    compiled.set(schema, fn);
  }
  return fn;
}

export interface ValidationIssue {
  path: string;
  message: string;
}

function toIssues(errors: ErrorObject[] | null | undefined): ValidationIssue[] {
  return (errors ?? []).slice(0, 10).map((e) => ({ path: e.instancePath || '/', message: e.message ?? 'invalid' }));
}

export function validate<S extends TSchema>(
  schema: S,
  value: unknown,
): { ok: true; value: Static<S> } | { ok: false; issues: ValidationIssue[] } {
  const fn = validatorFor(schema);
  return fn(value) ? { ok: true, value: value as Static<S> } : { ok: false, issues: toIssues(fn.errors) };
}

/** Validates or throws a CustodianException carrying the first issues (never the offending values). */
export function assertValid<S extends TSchema>(
  schema: S,
  value: unknown,
  { code = Codes.ValidationFailed as ErrorCode, what = 'input' } = {},
): Static<S> {
  const result = validate(schema, value);
  if (!result.ok) {
    throw new CustodianException(code, `Invalid ${what}`, { issues: result.issues });
  }
  return result.value;
}
