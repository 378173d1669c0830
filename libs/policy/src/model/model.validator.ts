import Ajv, { type ValidateFunction } from 'ajv';
import type { TSchema } from '@sinclair/typebox';
import { PolicyError } from '../errors/policy.error';
import { assertNoForbiddenKeys } from './safe-input';
import { PrincipalSnapshotSchema, type PrincipalSnapshot } from './principal-snapshot.schema';
import { ObjectSecuritySchema, RecordShareSchema, type ObjectSecurity, type RecordShare } from './object-security.schema';

const ajv = new Ajv({ allErrors: false, strict: true, useDefaults: false });

function compile<T>(schema: TSchema): ValidateFunction<T> {
  return ajv.compile<T>(schema);
}

const validators = {
  snapshot: compile<PrincipalSnapshot>(PrincipalSnapshotSchema),
  object: compile<ObjectSecurity>(ObjectSecuritySchema),
  share: compile<RecordShare>(RecordShareSchema),
};

function check<T>(what: string, validate: ValidateFunction<T>, input: unknown): T {
  // Prototype keys are refused before schema validation and long before anything reaches CASL.
  assertNoForbiddenKeys(input);
  if (!validate(input)) {
    const first = validate.errors?.[0];
    throw new PolicyError('invalid_input', {
      what,
      path: first?.instancePath ?? '',
      keyword: first?.keyword ?? 'unknown',
    });
  }
  return input;
}

/** Validates untrusted JSON as a principal snapshot (throws PolicyError `invalid_input`/`forbidden_key`). */
export function parsePrincipalSnapshot(input: unknown): PrincipalSnapshot {
  return check('principal_snapshot', validators.snapshot, input);
}

/** Validates untrusted JSON as object security metadata (shape only; see compileCatalog for semantics). */
export function parseObjectSecurity(input: unknown): ObjectSecurity {
  return check('object_security', validators.object, input);
}

export function parseRecordShare(input: unknown): RecordShare {
  return check('record_share', validators.share, input);
}

/** The published JSON Schemas (bundle format). */
export const POLICY_JSON_SCHEMAS = {
  principalSnapshot: PrincipalSnapshotSchema,
  objectSecurity: ObjectSecuritySchema,
  recordShare: RecordShareSchema,
} as const;
