import { Type } from '@sinclair/typebox';
import { buildOpenApiDocument, openApiPath, plainSchema, type ApiRoute } from './openapi-document';

const route = (over: Partial<ApiRoute>): ApiRoute => ({
  controller: 'ThingsController',
  handler: 'get',
  method: 'GET',
  path: '/api/v1/things/:id',
  access: 'policy',
  policy: { capabilities: ['manage_users'] },
  ...over,
});

describe('buildOpenApiDocument', () => {
  it('turns Nest paths into OpenAPI templates', () => {
    expect(openApiPath('/api/v1/data/:object/:id/files/:field')).toBe('/api/v1/data/{object}/{id}/files/{field}');
    expect(openApiPath('/console/*path')).toBe('/console/{path}');
  });

  it('marks a route without @ApiContract, so the coverage test can name it', () => {
    const doc = buildOpenApiDocument([
      route({}),
      route({ handler: 'list', path: '/api/v1/things', contract: { responses: { 200: Type.Object({}) } } }),
    ]);
    expect(doc.paths['/api/v1/things/{id}'].get['x-custodian-contract']).toBe(false);
    expect(doc.paths['/api/v1/things'].get['x-custodian-contract']).toBe(true);
  });

  it('documents the policy, the path parameters, query parameters and problem codes by status', () => {
    const doc = buildOpenApiDocument([
      route({
        method: 'POST',
        handler: 'create',
        contract: {
          body: Type.Object({ name: Type.String() }),
          query: Type.Object({ dryRun: Type.Optional(Type.String({ description: 'preview' })) }),
          responses: { 201: Type.Object({ id: Type.String() }) },
          problems: ['conflict', 'field_not_editable'],
        },
      }),
    ]);
    const op = doc.paths['/api/v1/things/{id}'].post;
    expect(op.operationId).toBe('thingsCreate');
    expect(op['x-custodian-policy']).toEqual({ access: 'signed-in', capabilities: ['manage_users'] });
    expect(op.parameters).toEqual([
      { name: 'id', in: 'path', required: true, schema: { type: 'string' } },
      { name: 'dryRun', in: 'query', required: false, schema: { type: 'string' }, description: 'preview' },
    ]);
    expect(op.responses['403']['x-custodian-problem-codes']).toEqual(['field_not_editable', 'forbidden']);
    expect(op.responses['409']['x-custodian-problem-codes']).toEqual(['conflict']);
    expect(op.responses['404']['x-custodian-problem-codes']).toEqual(['not_found']);
    expect(op.responses['400']['x-custodian-problem-codes']).toContain('malformed_json');
    expect(op.security).toBeUndefined();
  });

  it('a public route needs no credential and answers no auth problems; @All() is GET and POST', () => {
    const doc = buildOpenApiDocument([route({ method: 'ALL', path: '/oauth', access: 'public', policy: undefined })]);
    expect(Object.keys(doc.paths['/oauth']).sort()).toEqual(['get', 'post']);
    expect(doc.paths['/oauth'].get.security).toEqual([]);
    expect(doc.paths['/oauth'].get.responses['401']).toBeUndefined();
    expect(doc.paths['/oauth'].post.operationId).not.toBe(doc.paths['/oauth'].get.operationId);
  });

  it("lists the edge's 429 rate_limited and 503 request_timeout with their headers, except where the edge does not answer them", () => {
    const doc = buildOpenApiDocument([
      route({}),
      route({ handler: 'live', path: '/health/live', access: 'public', policy: undefined }),
      route({ handler: 'metrics', path: '/metrics', access: 'public', policy: undefined }),
      route({ handler: 'apply', method: 'POST', path: '/api/v1/bundles/apply' }),
      route({
        handler: 'scim',
        path: '/scim/v2/Users',
        contract: { responses: { 200: Type.Object({}) }, errorContentType: 'application/scim+json' },
      }),
    ]);
    const thing = doc.paths['/api/v1/things/{id}'].get.responses;
    expect(thing['429']['x-custodian-problem-codes']).toEqual(['rate_limited']);
    expect(Object.keys(thing['429'].headers as object)).toEqual(['Retry-After', 'RateLimit', 'RateLimit-Policy']);
    expect(thing['429'].headers).toMatchObject({ 'Retry-After': { required: true } });
    expect(thing['503']['x-custodian-problem-codes']).toEqual(['bus_no_responders', 'request_timeout', 'service_unavailable']);
    expect(Object.keys(thing['503'].headers as object)).toEqual(['Retry-After']);
    // The probes and /metrics are neither limited nor deadlined; bundle apply has its own bound.
    for (const path of ['/health/live', '/metrics']) {
      expect(doc.paths[path].get.responses['429']).toBeUndefined();
      expect(doc.paths[path].get.responses['503']['x-custodian-problem-codes']).toEqual(['service_unavailable']);
    }
    expect(doc.paths['/api/v1/bundles/apply'].post.responses['429']).toBeDefined();
    expect(doc.paths['/api/v1/bundles/apply'].post.responses['503']['x-custodian-problem-codes']).not.toContain('request_timeout');
    // A route with its own error media type answers the edge's problems as problem+json.
    const scim = doc.paths['/scim/v2/Users'].get.responses;
    expect(Object.keys(scim['429'].content as object)).toEqual(['application/problem+json']);
    expect(Object.keys(scim['503'].content as object)).toEqual(['application/scim+json', 'application/problem+json']);
    expect(scim['503']['x-custodian-problem-codes']).toEqual(['request_timeout']);
  });

  it('drops embedded $id (one document, no ids to collide)', () => {
    expect(plainSchema(Type.Object({ a: Type.String() }, { $id: 'x' }))).toEqual({
      type: 'object',
      properties: { a: { type: 'string' } },
      required: ['a'],
    });
  });
});
