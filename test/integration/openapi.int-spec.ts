import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { collectApiRoutes, openApiMethods, openApiPath, type OpenApiDocument } from '@custodian/platform';
import { readFileSync } from 'node:fs';
import { CLIENT_FILE, formatClient, renderClient, type OpenApiLike } from '../../scripts/generate-client';
import { CustodianApiError, CustodianClient } from '../../packages/client/src';
import { TEST_ADMIN, login, startTestHost, type TestHost } from '../support/host';

/**
 * The OpenAPI document of the all-in-one (docs/api.md): every route of the inventory is in it with
 * a declared contract, every schema in it compiles, and real answers of a representative set of
 * requests — successes and problems — match the document's schema for their route and status.
 */
describe('OpenAPI document', () => {
  let t: TestHost;
  let base: string;
  let doc: OpenApiDocument;
  let token: string;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);

  beforeAll(async () => {
    t = await startTestHost('openapi');
    base = t.host.url;
    const res = await fetch(`${base}/api/v1/openapi.json`);
    expect(res.status).toBe(200);
    doc = (await res.json()) as OpenApiDocument;
    token = (await login(base)).accessToken;
  });

  afterAll(async () => {
    await t?.stop();
  });

  it('is OpenAPI 3.1 with JSON Schema 2020-12', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.jsonSchemaDialect).toBe('https://json-schema.org/draft/2020-12/schema');
  });

  it('has every route of the inventory, each with its declared contract and policy', () => {
    const routes = collectApiRoutes(t.host.app);
    expect(routes.length).toBeGreaterThan(100);
    const operations = routes.flatMap((r) =>
      openApiMethods(r.method).map((method) => ({ r, op: doc.paths[openApiPath(r.path)]?.[method] })),
    );
    const missing = operations.filter(({ op }) => op === undefined).map(({ r }) => `${r.method} ${r.path}`);
    expect(missing).toEqual([]);
    // A route without @ApiContract (libs/platform/src/openapi) is in the document with no schema: declare one.
    const undeclared = operations
      .filter(({ op }) => op?.['x-custodian-contract'] !== true)
      .map(({ r }) => `${r.method} ${r.path} (${r.controller}.${r.handler})`);
    expect(undeclared).toEqual([]);
    for (const { r, op } of operations) {
      const policy = op!['x-custodian-policy'];
      expect(policy.access).toBe(r.access === 'public' ? 'public' : 'signed-in');
      if (r.policy?.capabilities) expect(policy.capabilities).toEqual([...r.policy.capabilities]);
    }
  });

  it('every schema in it compiles (Ajv, draft 2020-12)', () => {
    const failures: string[] = [];
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        const schemas = [
          ...Object.values((op.requestBody?.content ?? {}) as Record<string, { schema: object }>).map((c) => c.schema),
          ...Object.values(op.responses).flatMap((r) =>
            Object.values((r.content ?? {}) as Record<string, { schema: object }>).map((c) => c.schema),
          ),
          ...((op.parameters ?? []) as Array<{ schema: object }>).map((p) => p.schema),
        ];
        for (const schema of schemas) {
          try {
            ajv.compile(schema);
          } catch (error) {
            failures.push(`${method} ${path}: ${(error as Error).message}`);
          }
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it('a protected route lists the auth problems and its own codes; a public one has no security', () => {
    const create = doc.paths['/api/v1/roles'].post;
    expect(create['x-custodian-policy']).toEqual({ access: 'signed-in', capabilities: ['manage_roles'] });
    expect(create.responses['401']['x-custodian-problem-codes']).toEqual(['unauthenticated']);
    expect(create.responses['409']['x-custodian-problem-codes']).toEqual(['conflict']);
    expect(doc.paths['/api/v1/auth/login'].post.security).toEqual([]);
    expect(doc.paths['/api/v1/data/{object}'].get.responses['404']['x-custodian-problem-codes']).toContain('object_not_found');
  });

  /** Checks one real answer against the document: its status must be documented and its body match. */
  async function conforms(method: string, template: string, path: string, body?: unknown, auth: string | null = token): Promise<unknown> {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(auth ? { authorization: `Bearer ${auth}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return matches(res, method, template, path);
  }

  /** Checks a received answer against its route and status: status, required headers and their form, body. */
  async function matches(res: Response, method: string, template: string, path: string): Promise<unknown> {
    const op = doc.paths[template]?.[method.toLowerCase()];
    if (!op) throw new Error(`${method} ${template} is not in the document`);
    const answer = op.responses[String(res.status)] as
      { content?: Record<string, { schema: object }>; headers?: Record<string, { required?: boolean; schema: object }> } | undefined;
    if (!answer) throw new Error(`${method} ${path}: status ${res.status} is not documented (${await res.text()})`);
    for (const [name, header] of Object.entries(answer.headers ?? {})) {
      const value = res.headers.get(name);
      if (value === null) {
        if (header.required) throw new Error(`${method} ${path} ${res.status}: no ${name} header, the document requires one`);
        continue;
      }
      const validate = ajv.compile(header.schema);
      if (!validate(value)) throw new Error(`${method} ${path} ${res.status}: header ${name}: ${value} ${ajv.errorsText(validate.errors)}`);
    }
    const text = await res.text();
    if (!answer.content) {
      expect(text).toBe('');
      return undefined;
    }
    const type = (res.headers.get('content-type') ?? '').split(';')[0];
    const media = answer.content[type];
    if (!media)
      throw new Error(`${method} ${path}: ${res.status} answered ${type}, the document says ${Object.keys(answer.content).join(', ')}`);
    const value = JSON.parse(text) as unknown;
    const validate = ajv.compile(media.schema);
    if (!validate(value)) throw new Error(`${method} ${path} ${res.status}: ${ajv.errorsText(validate.errors)} in ${text.slice(0, 500)}`);
    return value;
  }

  it('real answers match the document (successes and problems, across the five services)', async () => {
    await conforms('POST', '/api/v1/auth/login', '/api/v1/auth/login', TEST_ADMIN, null);
    await conforms('POST', '/api/v1/auth/login', '/api/v1/auth/login', { email: TEST_ADMIN.email, password: 'wrong-password-here' }, null);
    await conforms('POST', '/api/v1/auth/login', '/api/v1/auth/login', { email: 1 }, null);
    await conforms('GET', '/api/v1/auth/me', '/api/v1/auth/me');
    await conforms('GET', '/api/v1/auth/me', '/api/v1/auth/me', undefined, null);
    await conforms('GET', '/api/v1/sessions', '/api/v1/sessions');
    await conforms('GET', '/api/v1/orgs', '/api/v1/orgs');
    await conforms('GET', '/api/v1/users', '/api/v1/users');
    await conforms('GET', '/api/v1/users', '/api/v1/users?limit=0');
    await conforms('GET', '/api/v1/users/{id}', '/api/v1/users/00000000-0000-4000-8000-000000000000');
    const role = (await conforms('POST', '/api/v1/roles', '/api/v1/roles', { name: 'OpenAPI role' })) as { id: string };
    await conforms('GET', '/api/v1/roles/{id}', `/api/v1/roles/${role.id}`);
    await conforms('GET', '/api/v1/roles', '/api/v1/roles');
    await conforms('POST', '/api/v1/roles', '/api/v1/roles', { name: '' });
    const group = (await conforms('POST', '/api/v1/groups', '/api/v1/groups', { name: 'OpenAPI group' })) as { id: string };
    await conforms('GET', '/api/v1/groups/{id}/members', `/api/v1/groups/${group.id}/members`);
    await conforms('GET', '/api/v1/groups', '/api/v1/groups');
    await conforms('GET', '/api/v1/permission-sets', '/api/v1/permission-sets');
    const key = (await conforms('POST', '/api/v1/api-keys', '/api/v1/api-keys', { name: 'openapi', scopes: ['api_access'] })) as {
      id: string;
    };
    await conforms('GET', '/api/v1/api-keys', '/api/v1/api-keys');
    await conforms('DELETE', '/api/v1/api-keys/{id}', `/api/v1/api-keys/${key.id}`);
    await conforms('GET', '/api/v1/signing-keys', '/api/v1/signing-keys');
    await conforms('GET', '/api/v1/meta/objects', '/api/v1/meta/objects');
    await conforms('GET', '/api/v1/meta/objects/{name}', '/api/v1/meta/objects/no_such_object');
    await conforms('POST', '/api/v1/query', '/api/v1/query', { object: 'no_such_object' });
    await conforms('POST', '/api/v1/bundles/apply', '/api/v1/bundles/apply', { document: 'version: 1\n', dryRun: true });
    await conforms('GET', '/api/v1/approvals', '/api/v1/approvals');
    await conforms('GET', '/api/v1/approvals', '/api/v1/approvals?status=nonsense');
    await conforms('GET', '/api/v1/approvals/policies', '/api/v1/approvals/policies');
    await conforms('GET', '/api/v1/audit/events', '/api/v1/audit/events?limit=5');
    await conforms('GET', '/api/v1/audit/verify', '/api/v1/audit/verify');
    await conforms('GET', '/api/v1/audit/checkpoints', '/api/v1/audit/checkpoints');
    await conforms('GET', '/api/v1/agent/settings', '/api/v1/agent/settings');
    await conforms('GET', '/api/v1/agent/profiles', '/api/v1/agent/profiles');
    await conforms('GET', '/api/v1/agent/conversations', '/api/v1/agent/conversations');
    await conforms('GET', '/health/ready', '/health/ready', undefined, null);
  });

  it('real answers of the list routes are the one list envelope (ADR 0018) and match the document', async () => {
    type Page = { items: Array<Record<string, unknown>>; nextCursor: string | null };
    const note = { name: 'openapi_note', label: 'Note', fields: [{ name: 'title', type: 'text' }] };
    await conforms('POST', '/api/v1/meta/objects', '/api/v1/meta/objects', note);
    const objects = (await conforms('GET', '/api/v1/meta/objects', '/api/v1/meta/objects')) as Page & { policyVersion: number };
    expect(objects).toMatchObject({ nextCursor: null, policyVersion: expect.any(Number) });
    expect(objects.items.map((o) => o.name)).toContain('openapi_note');

    const first = (await conforms('POST', '/api/v1/data/{object}', '/api/v1/data/openapi_note', { title: 'a' })) as { id: string };
    await conforms('POST', '/api/v1/data/{object}', '/api/v1/data/openapi_note', { title: 'b' });
    const page = (await conforms('GET', '/api/v1/data/{object}', '/api/v1/data/openapi_note?limit=1&orderBy=title')) as Page;
    expect(Object.keys(page).sort()).toEqual(['items', 'nextCursor']); // limit is not echoed
    expect(page.items.map((r) => r.title)).toEqual(['a']);
    const last = (await conforms(
      'GET',
      '/api/v1/data/{object}',
      `/api/v1/data/openapi_note?limit=1&orderBy=title&cursor=${encodeURIComponent(page.nextCursor!)}`,
    )) as Page;
    expect([last.items.map((r) => r.title), last.nextCursor]).toEqual([['b'], null]);
    const queried = (await conforms('POST', '/api/v1/query', '/api/v1/query', {
      object: 'openapi_note',
      orderBy: [{ field: 'title' }],
    })) as Page;
    expect([queried.items.map((r) => r.title), queried.nextCursor]).toEqual([['a', 'b'], null]);
    const counted = await conforms('POST', '/api/v1/query', '/api/v1/query', {
      object: 'openapi_note',
      aggregations: [{ function: 'count', alias: 'n' }],
    });
    expect(counted).toEqual({ groups: [{ n: 2 }] }); // an aggregate keeps its own answer

    const group = (await conforms('POST', '/api/v1/groups', '/api/v1/groups', { name: 'OpenAPI readers' })) as { id: string };
    const share = { granteeType: 'group', granteeId: group.id, accessLevel: 'read' };
    await conforms('POST', '/api/v1/data/{object}/{id}/shares', `/api/v1/data/openapi_note/${first.id}/shares`, share);
    const shares = (await conforms('GET', '/api/v1/data/{object}/{id}/shares', `/api/v1/data/openapi_note/${first.id}/shares`)) as Page;
    expect([shares.items.map((s) => s.granteeId), shares.nextCursor]).toEqual([[group.id], null]);
    const rule = {
      name: 'b to readers',
      type: 'criteria',
      criteria: { title: 'b' },
      sharedWith: { type: 'group', id: group.id },
      accessLevel: 'read',
    };
    await conforms('POST', '/api/v1/meta/objects/{name}/sharing-rules', '/api/v1/meta/objects/openapi_note/sharing-rules', rule);
    const rules = (await conforms(
      'GET',
      '/api/v1/meta/objects/{name}/sharing-rules',
      '/api/v1/meta/objects/openapi_note/sharing-rules',
    )) as Page;
    expect([rules.items.map((r) => r.name), rules.nextCursor]).toEqual([['b to readers'], null]);
    const actions = await conforms('GET', '/api/v1/meta/objects/{name}/actions', '/api/v1/meta/objects/openapi_note/actions');
    expect(actions).toEqual({ items: [], nextCursor: null });

    await conforms('POST', '/api/v1/audit/checkpoints', '/api/v1/audit/checkpoints');
    const checkpoints = (await conforms('GET', '/api/v1/audit/checkpoints', '/api/v1/audit/checkpoints')) as Page & {
      publicKeys: string[];
    };
    expect(checkpoints).toMatchObject({ items: expect.any(Array), nextCursor: null, publicKeys: expect.any(Array) });
    for (const list of ['settings', 'profiles', 'conversations']) {
      const answer = (await conforms('GET', `/api/v1/agent/${list}`, `/api/v1/agent/${list}`)) as Page;
      expect([list, Array.isArray(answer.items), answer.nextCursor]).toEqual([list, true, null]);
    }
  });

  it("the edge's answers match the document: a real 429 rate_limited and a real 503 request_timeout (edge.int-spec.ts)", async () => {
    // One more host: a 1 ms request deadline (a password check never makes it) and an address
    // bucket of 3 tokens that does not refill during the test. The document is the same: same routes.
    const edge = await startTestHost('openapi_edge', {
      CUSTODIAN_HTTP_HANDLER_TIMEOUT_MS: '1',
      CUSTODIAN_RATE_LIMIT_EXEMPT: '',
      CUSTODIAN_RATE_LIMIT_ADDRESS_PER_SECOND: '0.001',
      CUSTODIAN_RATE_LIMIT_ADDRESS_BURST: '3',
      CUSTODIAN_RATE_LIMIT_BEARER_PER_SECOND: '0',
    });
    try {
      const send = (method: string, path: string, body?: unknown): Promise<Response> =>
        fetch(`${edge.host.url}${path}`, {
          method,
          headers: body === undefined ? {} : { 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      const late = await send('POST', '/api/v1/auth/login', TEST_ADMIN);
      expect(late.status).toBe(503);
      expect(await matches(late, 'POST', '/api/v1/auth/login', '/api/v1/auth/login')).toMatchObject({ code: 'request_timeout' });
      // A probe is neither limited nor deadlined, and the document lists neither code for it.
      expect((await send('GET', '/health/live')).status).toBe(200);
      const ready = doc.paths['/health/ready'].get.responses;
      expect([ready['429'], JSON.stringify(ready['503'] ?? {})]).toEqual([undefined, expect.not.stringContaining('request_timeout')]);
      let limited: Response | undefined;
      for (let i = 0; i < 3 && !limited; i++) {
        const res = await send('GET', '/api/v1/users');
        if (res.status === 429) limited = res;
        else await res.arrayBuffer();
      }
      expect(limited?.status).toBe(429);
      expect(limited!.headers.get('ratelimit')).toMatch(/^"address";r=0;t=\d+$/);
      expect(await matches(limited!, 'GET', '/api/v1/users', '/api/v1/users')).toMatchObject({
        code: 'rate_limited',
        details: { policy: 'address' },
      });
      // Every route the limiter guards documents it, SCIM's too (as problem+json beside its own errors).
      const scim = doc.paths['/scim/v2/Users'].get.responses['429'] as { content: Record<string, unknown> };
      expect(Object.keys(scim.content)).toEqual(['application/problem+json']);
    } finally {
      await edge.stop();
    }
  }, 120_000);

  it('serves a static reference page under a strict CSP that loads nothing from elsewhere', async () => {
    const res = await fetch(`${base}/api/v1/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).not.toMatch(/script-src/);
    const html = await res.text();
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//i);
    expect(html).toContain('/api/v1/approvals/{id}/approve');
  });

  it('the generated client signs in, lists, creates and revokes typed, and throws the problem code with the request id', async () => {
    const anonymous = new CustodianClient({ baseUrl: base });
    const { accessToken, orgId } = await anonymous.authLogin({ body: TEST_ADMIN });
    expect(orgId).toMatch(/^[0-9a-f-]{36}$/);
    const api = anonymous.withToken(accessToken);
    const me = await api.authMe();
    expect(me.userId).toBeDefined();
    const created = await api.apiKeysCreate({ body: { name: 'client test' } });
    expect(api.lastStatus).toBe(201);
    expect(created.key.length).toBeGreaterThan(20);
    const listed = await api.apiKeysList({ query: { limit: '200' } });
    expect(listed.items.map((k) => k.id)).toContain(created.id);
    await api.apiKeysRevoke({ id: created.id });
    expect(api.lastStatus).toBe(204);
    const failure = await api.usersGet({ id: '00000000-0000-4000-8000-000000000000' }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(CustodianApiError);
    expect(failure).toMatchObject({ status: 404, code: 'not_found', requestId: expect.any(String) });
    const refused = await anonymous.usersList().catch((error: unknown) => error);
    expect(refused).toMatchObject({ status: 401, code: 'unauthenticated' });
  });

  it('the checked-in client (packages/client) is what the generator makes of this document', async () => {
    // Stale? Run: node scripts/run-ts.cjs scripts/generate-client.ts (docs/api.md).
    const expected = formatClient(renderClient(doc as unknown as OpenApiLike), CLIENT_FILE);
    expect(readFileSync(CLIENT_FILE, 'utf8') === expected).toBe(true);
  });
});
