import { ERROR_HTTP_STATUS, isErrorCode, type ErrorCode } from '@custodian/contracts';
import { POLICY_ERROR_STATUS, type PolicyErrorCode } from '@custodian/policy';
import type { TSchema } from '@sinclair/typebox';
import type { Request } from 'express';
import type { RouteInfo } from '../auth/route-inventory';
import { isLongRunning } from '../http/request-deadline.middleware';
import type { ApiContractSpec, ApiResponseSpec } from './api-contract.decorator';
import { ProblemSchema } from './api-schemas';

/** A route of the inventory with what its `@ApiContract` and `@HttpCode` say. */
export interface ApiRoute extends RouteInfo {
  contract?: ApiContractSpec;
  httpCode?: number;
}

type Json = Record<string, unknown>;

export interface OpenApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description: string };
  jsonSchemaDialect: string;
  servers: Array<{ url: string }>;
  tags: Array<{ name: string }>;
  security: Array<Record<string, string[]>>;
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
}

export interface OpenApiOperation {
  operationId: string;
  tags: string[];
  summary?: string;
  description?: string;
  parameters?: Json[];
  requestBody?: Json;
  responses: Record<string, Json>;
  security?: Array<Record<string, string[]>>;
  'x-custodian-policy': Json;
  'x-custodian-contract': boolean;
}

const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'ALL']);

/** The OpenAPI operations a route answers on: a Nest `@All()` route (e.g. an OAuth endpoint) as GET and POST. */
export function openApiMethods(method: string): string[] {
  return method === 'ALL' ? ['get', 'post'] : [method.toLowerCase()];
}

/** `/api/v1/users/:id` → `/api/v1/users/{id}`; `*path` (a catch-all) → `{path}`. */
export function openApiPath(path: string): string {
  return path.replace(/[:*]([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
}

function pathParams(path: string): string[] {
  return [...path.matchAll(/[:*]([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]);
}

/** A TypeBox schema as plain JSON Schema 2020-12: symbols dropped, embedded `$id`s removed (one document, no ids). */
export function plainSchema(schema: TSchema | undefined): Json {
  if (!schema) return {};
  return JSON.parse(JSON.stringify(schema), (key, value: unknown) => (key === '$id' || key === '$schema' ? undefined : value)) as Json;
}

function statusOfCode(code: ErrorCode | PolicyErrorCode): number {
  return isErrorCode(code) ? ERROR_HTTP_STATUS[code] : (POLICY_ERROR_STATUS[code as PolicyErrorCode] ?? 400);
}

/**
 * The problems the edge answers before a route's handler (libs/platform/src/app/service-host.ts):
 * the general rate limiter's 429 on every route but the probes and `/metrics`, and the request
 * deadline's 503 on every route that has no longer bound of its own (`isLongRunning`, judged by
 * the path alone: a client asking for an event stream escapes it too, but the document cannot know).
 * Both are problem+json whatever media type the route's own errors use (docs/operations.md).
 */
export function edgeProblemCodesOf(path: string): Array<'rate_limited' | 'request_timeout'> {
  const codes: Array<'rate_limited' | 'request_timeout'> = [];
  if (!path.startsWith('/health/') && path !== '/metrics') codes.push('rate_limited');
  if (!isLongRunning({ path, headers: {} } as Request)) codes.push('request_timeout');
  return codes;
}

/** The problem codes a route may answer: the edge's, those of its kind (auth, input, path ids, writes) plus its own. */
export function problemCodesOf(route: ApiRoute): Map<number, string[]> {
  const codes = new Set<ErrorCode | PolicyErrorCode>(['internal_error', 'service_unavailable', ...edgeProblemCodesOf(route.path)]);
  const c = route.contract;
  if (route.access !== 'public') {
    codes.add('unauthenticated');
    codes.add('forbidden');
  }
  if (c?.body || c?.query || route.method === 'GET' || pathParams(route.path).length > 0) codes.add('validation_failed');
  if (c?.body)
    for (const code of ['bad_request', 'malformed_json', 'forbidden_key', 'payload_too_large', 'unsupported_media_type'] as const)
      codes.add(code);
  if (pathParams(route.path).length > 0) codes.add('not_found');
  if (route.method !== 'GET' && route.access !== 'public') codes.add('audit_backlog');
  if (route.access !== 'public') {
    // A call that crosses to another service over the bus may time out or find nobody answering.
    codes.add('bus_timeout');
    codes.add('bus_no_responders');
  }
  for (const code of c?.problems ?? []) codes.add(code);
  const byStatus = new Map<number, string[]>();
  for (const code of [...codes].sort()) {
    const status = statusOfCode(code);
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return byStatus;
}

const EDGE_CODES: ReadonlySet<string> = new Set(['rate_limited', 'request_timeout']);

/**
 * A 429 always says when to retry, and so do the 503s of the edge and of the problem filter
 * (libs/platform/src/http); the limiter's buckets are named in the RateLimit headers
 * (draft-ietf-httpapi-ratelimit-headers), which every answer carries while the limiter is on.
 */
const RETRY_AFTER = { description: 'Seconds to wait before retrying', schema: { type: 'string', pattern: '^[0-9]+$' } };
const RATE_LIMIT_HEADERS: Json = {
  RateLimit: { description: 'The tightest bucket: `"<address|credential>";r=<remaining>;t=<seconds>`', schema: { type: 'string' } },
  'RateLimit-Policy': { description: 'The buckets that apply: `"<name>";q=<burst>;w=<seconds>`, …', schema: { type: 'string' } },
};

function problemHeaders(status: number, codes: string[]): Json | undefined {
  if (status !== 429 && status !== 503) return undefined;
  return {
    'Retry-After': status === 429 ? { ...RETRY_AFTER, required: true } : RETRY_AFTER,
    ...(codes.includes('rate_limited') ? RATE_LIMIT_HEADERS : {}),
  };
}

/**
 * The answer of one problem status. A route whose errors use another media type (SCIM) still gets
 * the edge's problems as problem+json, so such a status may list both media types.
 */
function problemResponse(status: number, codes: string[], contentType?: string): Json {
  const problem = codes.filter((code) => !contentType || EDGE_CODES.has(code));
  const own = contentType ? codes.filter((code) => !EDGE_CODES.has(code)) : [];
  const base = plainSchema(ProblemSchema) as { properties: Json };
  const content: Json = {};
  if (own.length > 0) content[contentType!] = { schema: { type: 'object' } };
  if (problem.length > 0)
    content['application/problem+json'] = {
      schema: { ...base, properties: { ...base.properties, code: { type: 'string', enum: problem } } },
    };
  const headers = problemHeaders(status, codes);
  return {
    description: problem.length === 0 ? `Error (${contentType})` : `Problem: ${codes.join(', ')}`,
    ...(headers ? { headers } : {}),
    content,
    ...(problem.length > 0 ? { 'x-custodian-problem-codes': problem } : {}),
  };
}

function successResponse(spec: ApiResponseSpec): Json {
  if (spec === null) return { description: 'No content' };
  if ('contentType' in spec && typeof spec.contentType === 'string' && !('type' in spec && typeof spec.type === 'string')) {
    const s = spec as { schema?: TSchema; contentType: string; description?: string };
    return {
      description: s.description ?? 'Success',
      content: { [s.contentType]: { schema: s.schema ? plainSchema(s.schema) : /json/.test(s.contentType) ? {} : { type: 'string' } } },
    };
  }
  return { description: 'Success', content: { 'application/json': { schema: plainSchema(spec as TSchema) } } };
}

function policyExtension(route: RouteInfo): Json {
  if (route.access === 'public') return { access: 'public' };
  if (route.access === 'undeclared') return { access: 'undeclared' };
  const p = route.policy ?? {};
  return {
    access: 'signed-in',
    capabilities: [...(p.capabilities ?? [])],
    ...(p.reason ? { reason: p.reason } : {}),
    ...(p.credentialAdmin ? { credentialAdmin: true } : {}),
    ...(p.proposeThroughApprovals ? { proposeThroughApprovals: true } : {}),
  };
}

function operationIdOf(route: ApiRoute): string {
  const base = route.controller.replace(/Controller$/, '');
  return `${base.charAt(0).toLowerCase()}${base.slice(1)}${route.handler.charAt(0).toUpperCase()}${route.handler.slice(1)}`;
}

function operationOf(route: ApiRoute, operationId: string): OpenApiOperation {
  const c = route.contract;
  const parameters: Json[] = pathParams(route.path).map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } }));
  const query = c?.query ? (plainSchema(c.query) as { properties?: Record<string, Json>; required?: string[] }) : undefined;
  for (const [name, schema] of Object.entries(query?.properties ?? {})) {
    const { description, ...rest } = schema as Json & { description?: string };
    parameters.push({
      name,
      in: 'query',
      required: (query?.required ?? []).includes(name),
      schema: rest,
      ...(description ? { description } : {}),
    });
  }
  for (const [name, h] of Object.entries(c?.headers ?? {})) {
    parameters.push({
      name,
      in: 'header',
      required: h.required === true,
      schema: { type: 'string' },
      ...(h.description ? { description: h.description } : {}),
    });
  }
  const responses: Record<string, Json> = {};
  const declared = c?.responses ?? {
    [route.httpCode ?? (route.method === 'POST' ? 201 : 200)]: { contentType: 'application/json', description: 'Not described' },
  };
  for (const [status, spec] of Object.entries(declared)) responses[status] = successResponse(spec);
  for (const [status, codes] of problemCodesOf(route)) {
    // A success answer on the same status (e.g. 503 of a readiness probe) keeps its own body.
    if (!responses[String(status)]) responses[String(status)] = problemResponse(status, codes, c?.errorContentType);
  }
  return {
    operationId,
    tags: [route.controller.replace(/Controller$/, '')],
    ...(c?.summary ? { summary: c.summary } : {}),
    ...(c?.description ? { description: c.description } : {}),
    ...(parameters.length ? { parameters } : {}),
    ...(c?.body
      ? { requestBody: { required: true, content: { [c.bodyType ?? 'application/json']: { schema: plainSchema(c.body) } } } }
      : {}),
    responses,
    ...(route.access === 'public' ? { security: [] } : {}),
    'x-custodian-policy': policyExtension(route),
    'x-custodian-contract': c !== undefined,
  };
}

/** The OpenAPI 3.1 document of a set of routes (every route of the inventory, sorted, stable ids). */
export function buildOpenApiDocument(routes: readonly ApiRoute[]): OpenApiDocument {
  const paths: OpenApiDocument['paths'] = {};
  const used = new Map<string, number>();
  const sorted = [...routes]
    .filter((r) => METHODS.has(r.method))
    .sort((a, b) => (a.path === b.path ? a.method.localeCompare(b.method) : a.path.localeCompare(b.path)));
  for (const route of sorted) {
    for (const method of openApiMethods(route.method)) {
      let id = operationIdOf(route);
      const n = (used.get(id) ?? 0) + 1;
      used.set(id, n);
      if (n > 1) id = `${id}${n}`;
      const p = openApiPath(route.path);
      paths[p] = { ...(paths[p] ?? {}), [method]: operationOf({ ...route, method: method.toUpperCase() }, id) };
    }
  }
  const tags = [...new Set(sorted.map((r) => r.controller.replace(/Controller$/, '')))].sort().map((name) => ({ name }));
  return {
    openapi: '3.1.0',
    info: {
      title: 'Custodian API',
      version: 'v1',
      description:
        'Generated at start-up from the route inventory and the TypeBox schemas the handlers validate with. ' +
        'Every error is application/problem+json with a `code` and a `requestId`. `x-custodian-policy` is the access each route declares.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [{ url: '/' }],
    tags,
    security: [{ bearer: [] }],
    paths,
    components: {
      schemas: { Problem: plainSchema(ProblemSchema) },
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'An access token from POST /api/v1/auth/login, or an API key' },
      },
    },
  };
}
