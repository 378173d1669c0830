import { Catch, HttpException, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { ERROR_HTTP_STATUS, ErrorCode } from '@custodian/contracts';
import { CustodianException } from '@custodian/platform';
import type { Response } from 'express';

export const SCIM_PREFIX = 'scim/v2';
export const SCIM_CONTENT_TYPE = 'application/scim+json';
export const SCHEMA_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const SCHEMA_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const SCHEMA_ENTERPRISE_USER = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const SCHEMA_LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const SCHEMA_PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const SCHEMA_ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

/** The scimType values of RFC 7644 §3.12 this server answers with. */
export type ScimType = 'invalidFilter' | 'invalidSyntax' | 'invalidPath' | 'invalidValue' | 'uniqueness' | 'mutability' | 'noTarget';

/** A SCIM protocol error: a 4xx with the RFC's scimType. The Custodian `code` travels along so logs and clients agree. */
export class ScimError extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    readonly scimType: ScimType | undefined,
    message: string,
  ) {
    super(message);
  }
}

export const invalidValue = (message: string): ScimError => new ScimError(400, 'invalidValue', message);
export const invalidPath = (message: string): ScimError => new ScimError(400, 'invalidPath', message);
export const uniqueness = (message: string): ScimError => new ScimError(409, 'uniqueness', message);

const CODE_FOR_STATUS: Record<number, ErrorCode> = { 400: ErrorCode.ValidationFailed, 404: ErrorCode.NotFound, 409: ErrorCode.Conflict };

/**
 * Identity providers parse the SCIM error schema (RFC 7644 §3.12), not problem+json: every error of
 * the SCIM routes, including the guard's 401/403, leaves in that shape with its status as a string.
 * Anything unexpected is left to the global filter (a logged, generic 500).
 */
@Catch(ScimError, CustodianException, HttpException)
export class ScimExceptionFilter implements ExceptionFilter {
  catch(exception: ScimError | CustodianException | HttpException, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    let status: number;
    let scimType: string | undefined;
    let detail: string;
    let code: string;
    if (exception instanceof ScimError) {
      status = exception.status;
      scimType = exception.scimType;
      detail = exception.message;
      code = CODE_FOR_STATUS[status];
    } else if (exception instanceof CustodianException) {
      status = ERROR_HTTP_STATUS[exception.code];
      code = exception.code;
      detail = exception.message;
      if (exception.code === ErrorCode.ValidationFailed || exception.code === ErrorCode.MalformedJson) scimType = 'invalidSyntax';
      if (exception.code === ErrorCode.Conflict) scimType = 'uniqueness';
      if (status === 429 || status === 503) response.setHeader('Retry-After', '1');
    } else {
      status = exception.getStatus();
      code = status === 404 ? ErrorCode.NotFound : status === 413 ? ErrorCode.PayloadTooLarge : ErrorCode.BadRequest;
      detail = status === 404 ? 'No such resource' : 'Bad request';
      if (status === 400) scimType = 'invalidSyntax';
    }
    if (status === 401) response.setHeader('WWW-Authenticate', 'Bearer realm="scim"');
    response
      .status(status)
      .type(SCIM_CONTENT_TYPE)
      .send(JSON.stringify({ schemas: [SCHEMA_ERROR], status: String(status), ...(scimType ? { scimType } : {}), detail, code }));
  }
}

/** An equality filter: the only kind Okta and Entra ID send (`userName eq "…"`, `externalId eq "…"`, `displayName eq "…"`). */
export interface EqFilter {
  attribute: string;
  value: string;
}

const FILTER = /^\s*([A-Za-z][A-Za-z0-9.:_-]{0,200})\s+eq\s+"((?:[^"\\]|\\.){0,1000})"\s*$/i;

/** Parses `attr eq "value"`; attribute names compare case-insensitively (RFC 7644 §3.4.2.2). */
export function parseFilter(raw: unknown, allowed: readonly string[]): EqFilter | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string') throw new ScimError(400, 'invalidFilter', 'filter must be a string');
  const match = FILTER.exec(raw);
  if (!match) throw new ScimError(400, 'invalidFilter', 'Only filters of the form attribute eq "value" are supported');
  const attribute = allowed.find((a) => a.toLowerCase() === match[1].toLowerCase());
  if (!attribute) throw new ScimError(400, 'invalidFilter', `Filtering on ${match[1].slice(0, 64)} is not supported`);
  return { attribute, value: match[2].replace(/\\(.)/g, '$1') };
}

export interface ScimPage {
  /** 1-based, as SCIM counts. */
  startIndex: number;
  count: number;
}

export const MAX_COUNT = 200;
const MAX_START = 100_000;

/** startIndex below 1 is read as 1 and a count above the maximum as the maximum (RFC 7644 §3.4.2.4); non-numbers are refused. */
export function pageOfScim(query: Record<string, unknown>): ScimPage {
  const read = (name: string, def: number): number => {
    const raw = query[name];
    if (raw === undefined) return def;
    if (typeof raw !== 'string' || !/^-?\d{1,9}$/.test(raw)) throw invalidValue(`${name} must be an integer`);
    return Number(raw);
  };
  const startIndex = Math.max(1, read('startIndex', 1));
  if (startIndex > MAX_START) throw invalidValue(`startIndex must be at most ${MAX_START}`);
  const count = Math.min(MAX_COUNT, Math.max(0, read('count', 100)));
  return { startIndex, count };
}

export function listResponse<T>(resources: T[], total: number, page: ScimPage): Record<string, unknown> {
  return { schemas: [SCHEMA_LIST], totalResults: total, startIndex: page.startIndex, itemsPerPage: resources.length, Resources: resources };
}

/** `excludedAttributes=members` (Entra ID asks for it) spares listing every member of big groups. */
export function excludes(query: Record<string, unknown>, attribute: string): boolean {
  const raw = query.excludedAttributes;
  return typeof raw === 'string' && raw.split(',').some((a) => a.trim().toLowerCase() === attribute.toLowerCase());
}

/** A PATCH request's operations, with `op` lower-cased (Entra ID sends "Replace", Okta "replace"). */
export interface PatchOperation {
  op: 'add' | 'replace' | 'remove';
  path?: string;
  value?: unknown;
}

export function patchOperations(body: unknown): PatchOperation[] {
  const b = body as { schemas?: unknown; Operations?: unknown } | null;
  if (!b || typeof b !== 'object' || !Array.isArray(b.schemas) || !b.schemas.includes(SCHEMA_PATCH)) {
    throw new ScimError(400, 'invalidSyntax', `A PATCH body needs schemas ["${SCHEMA_PATCH}"]`);
  }
  if (!Array.isArray(b.Operations) || b.Operations.length === 0 || b.Operations.length > 100) {
    throw new ScimError(400, 'invalidSyntax', 'Operations must be a list of 1 to 100 operations');
  }
  return b.Operations.map((raw: unknown) => {
    const o = raw as { op?: unknown; path?: unknown; value?: unknown } | null;
    const op = typeof o?.op === 'string' ? o.op.toLowerCase() : '';
    if (op !== 'add' && op !== 'replace' && op !== 'remove') throw new ScimError(400, 'invalidSyntax', 'op must be add, replace or remove');
    if (o!.path !== undefined && (typeof o!.path !== 'string' || o!.path.length > 500)) throw invalidPath('path must be a string');
    if (op === 'remove' && o!.path === undefined) throw new ScimError(400, 'noTarget', 'remove needs a path');
    return { op, ...(o!.path !== undefined ? { path: o!.path as string } : {}), ...(o!.value !== undefined ? { value: o!.value } : {}) };
  });
}

/** Entra ID sends booleans as the strings "True"/"False". */
export function scimBoolean(value: unknown, what: string): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
  throw invalidValue(`${what} must be a boolean`);
}

/** C0 controls and DEL: never part of a name an IdP sends, and trouble in logs and headers. */
const hasControl = (value: string): boolean => [...value].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);

export function scimString(value: unknown, what: string, max: number, allowEmpty = false): string {
  if (typeof value !== 'string' || value.length > max || (!allowEmpty && value.trim() === '') || hasControl(value)) {
    throw invalidValue(`${what} must be a string of at most ${max} characters without control characters`);
  }
  return value;
}
