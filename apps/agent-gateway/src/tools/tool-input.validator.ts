import { createHash } from 'node:crypto';
import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { JsonSchema } from './tool-catalog';

export interface InputIssue {
  /** JSON Pointer into the arguments, e.g. `/values/amount`. */
  field: string;
  message: string;
}

const MAX_COMPILED = 500;
const MAX_ISSUES = 10;

/**
 * JSON Schema 2020-12 validation of tool arguments, before anything runs. Compiled validators are
 * kept by the schema's hash (per-object schemas repeat across sessions of one policy version), at
 * most MAX_COMPILED of them, oldest dropped first.
 */
export class ToolInputValidator {
  private readonly ajv = new Ajv2020({ allErrors: true, strict: false, coerceTypes: false, useDefaults: false });
  private readonly compiled = new Map<string, ValidateFunction>();
  /** The same schema object comes back on every call while the catalog caches it: skip hashing it. */
  private readonly bySchema = new WeakMap<JsonSchema, ValidateFunction>();

  constructor() {
    addFormats(this.ajv);
  }

  validate(schema: JsonSchema, args: unknown): InputIssue[] {
    const fn = this.validatorFor(schema);
    if (fn(args)) return [];
    return issuesOf(fn.errors);
  }

  private validatorFor(schema: JsonSchema): ValidateFunction {
    const known = this.bySchema.get(schema);
    if (known) return known;
    const key = createHash('sha256').update(JSON.stringify(schema)).digest('base64url');
    let fn = this.compiled.get(key);
    if (fn) {
      // Most recently used last, so the oldest unused is dropped first.
      this.compiled.delete(key);
    } else {
      const { $schema: _dialect, ...body } = schema;
      fn = this.ajv.compile(body);
    }
    this.compiled.set(key, fn);
    if (this.compiled.size > MAX_COMPILED) this.compiled.delete(this.compiled.keys().next().value as string);
    this.bySchema.set(schema, fn);
    return fn;
  }
}

/** Readable issues: which field, why; the `if` wrapper errors of per-object branches say nothing and are dropped. */
function issuesOf(errors: ErrorObject[] | null | undefined): InputIssue[] {
  const out: InputIssue[] = [];
  const seen = new Set<string>();
  for (const e of errors ?? []) {
    if (e.keyword === 'if') continue;
    let field = e.instancePath || '/';
    let message = e.message ?? 'invalid';
    if (e.keyword === 'required') {
      const missing = (e.params as { missingProperty?: string }).missingProperty ?? '';
      field = `${e.instancePath}/${missing}`;
      message = 'is required';
    } else if (e.keyword === 'additionalProperties') {
      const extra = (e.params as { additionalProperty?: string }).additionalProperty ?? '';
      field = `${e.instancePath}/${extra.slice(0, 64)}`;
      message = 'is not allowed here (unknown, or not editable by you)';
    } else if (e.keyword === 'enum') {
      const allowed = (e.params as { allowedValues?: unknown[] }).allowedValues ?? [];
      message = `must be one of ${JSON.stringify(allowed.slice(0, 50)).slice(0, 500)}`;
    }
    const key = `${field} ${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ field, message });
    if (out.length >= MAX_ISSUES) break;
  }
  return out.length > 0 ? out : [{ field: '/', message: 'invalid arguments' }];
}
