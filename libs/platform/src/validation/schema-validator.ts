import type { TSchema, Static } from '@sinclair/typebox';
import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { type ErrorCode, ErrorCode as Codes } from '@custodian/contracts';
import { CustodianException } from '../errors/custodian.exception';

// verbose: errors carry their schema and data, so a union's error can name the alternative the caller
// meant (the data never reaches an issue's text).
const ajv = new Ajv2020({ allErrors: false, strict: false, coerceTypes: false, useDefaults: false, verbose: true });
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

/** A property name safe to echo in an error: an identifier-like key (never a value, never an arbitrary string). */
const NAMEABLE = /^[A-Za-z_$][A-Za-z0-9_$.-]{0,63}$/;

function issueOf(e: ErrorObject): ValidationIssue {
  const path = e.instancePath || '/';
  if (e.keyword === 'additionalProperty' || e.keyword === 'additionalProperties') {
    const name = (e.params as { additionalProperty?: unknown }).additionalProperty;
    if (typeof name === 'string' && NAMEABLE.test(name)) {
      return { path: `${e.instancePath}/${name}`, message: `unknown property "${name}"` };
    }
    return { path, message: 'must NOT have additional properties' };
  }
  if (e.keyword === 'enum') {
    const allowed = (e.params as { allowedValues?: unknown[] }).allowedValues ?? [];
    if (allowed.every((v) => typeof v === 'string' || typeof v === 'number'))
      return { path, message: `must be one of: ${allowed.join(', ')}` };
  }
  return { path, message: e.message ?? 'invalid' };
}

type Branch = { const?: unknown; enum?: unknown[]; properties?: Record<string, Branch> };
const isLiteral = (v: unknown): v is string | number => typeof v === 'string' || typeof v === 'number';

/**
 * Errors under a union (`anyOf`/`oneOf`, what TypeBox emits for `Type.Union`), said once instead of
 * once per alternative: a union of literals names its allowed values; a union of objects with a
 * literal discriminator (`type: 'owner' | 'criteria'`) names the allowed discriminator values, or,
 * when the caller picked one, reports that branch's own problems; otherwise the union's message.
 */
function unionIssues(union: ErrorObject): ValidationIssue[] {
  const at = union.instancePath;
  const parent = union.parentSchema as { anyOf?: Branch[]; oneOf?: Branch[] } | undefined;
  const branches = parent?.anyOf ?? parent?.oneOf ?? [];
  const fallback = [{ path: at || '/', message: union.message ?? 'must match one of the allowed shapes' }];
  const literals = branches.flatMap((b) => (b.const !== undefined ? [b.const] : (b.enum ?? [undefined])));
  if (branches.length > 0 && literals.every(isLiteral)) return [{ path: at || '/', message: `must be one of: ${literals.join(', ')}` }];
  const data = union.data as Record<string, unknown> | undefined;
  if (!data || typeof data !== 'object' || Array.isArray(data)) return fallback;
  const key = Object.keys(branches[0]?.properties ?? {}).find((k) => branches.every((b) => isLiteral(b.properties?.[k]?.const)));
  if (key === undefined) return fallback;
  const values = branches.map((b) => b.properties?.[key]?.const);
  const picked = branches.filter((b) => b.properties?.[key]?.const === data[key]);
  if (picked.length === 0) return [{ path: `${at}/${key}`, message: `must be one of: ${values.join(', ')}` }];
  if (picked.length > 1) return fallback;
  const fn = validatorFor(picked[0] as TSchema);
  if (fn(data)) return fallback;
  return toIssues(fn.errors).map((issue) => ({ ...issue, path: issue.path === '/' ? at || '/' : `${at}${issue.path}` }));
}

function toIssues(errors: readonly ErrorObject[] | null | undefined): ValidationIssue[] {
  const list = errors ?? [];
  // ajv lists a union's branch errors before the union's own error; the outermost union explains them.
  const unions = list.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf');
  const union = unions.sort((a, b) => a.schemaPath.length - b.schemaPath.length)[0];
  if (union) {
    const inside = (e: ErrorObject): boolean => e === union || e.schemaPath.startsWith(`${union.schemaPath}/`);
    return [...unionIssues(union), ...list.filter((e) => !inside(e)).map(issueOf)].slice(0, 10);
  }
  return list.slice(0, 10).map(issueOf);
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
