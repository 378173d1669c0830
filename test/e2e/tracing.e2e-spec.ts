import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { connect } from 'nats';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { pollUntil } from '../support/poll';
import { startProcess, type ServiceProcess } from '../support/process';

// OpenTelemetry (issue 19): the built services export over OTLP/HTTP to a receiver on loopback
// run by this test; one trace follows a request from HTTP through the bus into identity and down
// to SQL, with parent/child links — across two processes over NATS (traceparent in the message
// headers) and inside the all-in-one (the in-process bus's carrier).

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const ADMIN = { email: 'ops@tracing.test', password: 'tracing-e2e-password' };
const SERVER = 2;
const CLIENT = 3;

interface SpanRecord {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  service: string;
}

interface Receiver {
  url: string;
  spans: SpanRecord[];
  close(): Promise<void>;
}

/** A tiny OTLP/HTTP receiver (JSON, as @opentelemetry/exporter-trace-otlp-http sends): every span, flattened. */
async function startReceiver(): Promise<Receiver> {
  const spans: SpanRecord[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let raw = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
      if (req.method === 'POST' && req.url === '/v1/traces' && String(req.headers['content-type']).startsWith('application/json'))
        spans.push(...flatten(JSON.parse(raw.toString('utf8'))));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the OTLP JSON document, read field by field
function flatten(doc: any): SpanRecord[] {
  const out: SpanRecord[] = [];
  for (const rs of doc.resourceSpans ?? []) {
    const service = String(attrs(rs.resource?.attributes)['service.name']);
    for (const ss of rs.scopeSpans ?? [])
      for (const s of ss.spans ?? [])
        out.push({
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: s.parentSpanId ? hex(s.parentSpanId) : undefined,
          name: s.name,
          kind: s.kind,
          attributes: attrs(s.attributes),
          service,
        });
  }
  return out;
}

function attrs(list: Array<{ key: string; value: Record<string, unknown> }> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) out[key] = Object.values(value)[0];
  return out;
}

/** Ids are hex in OTLP/JSON; base64 is accepted too. */
function hex(id: string): string {
  return /^[0-9a-f]+$/i.test(id) && (id.length === 32 || id.length === 16) ? id.toLowerCase() : Buffer.from(id, 'base64').toString('hex');
}

async function signIn(base: string): Promise<string> {
  const res = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(ADMIN),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { accessToken: string }).accessToken;
}

/**
 * GET /api/v1/meta/objects at `objectsBase` with a fresh token (objects' guard asks identity over
 * the bus for the principal) and the trace it leaves: HTTP → bus request → identity's handler → SQL.
 */
async function assertOneTrace(
  receiver: Receiver,
  objectsBase: string,
  identityBase: string,
  services: { objects: string; identity: string },
) {
  const token = await signIn(identityBase);
  const res = await fetch(`${objectsBase}/api/v1/meta/objects`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  const wait = { timeoutMs: 20_000 };
  const root = await pollUntil(
    () => receiver.spans.find((s) => s.kind === SERVER && s.name === 'GET /api/v1/meta/objects' && s.parentSpanId === undefined),
    { ...wait, what: 'the HTTP span' },
  );
  expect(root.service).toBe(services.objects);
  expect(root.attributes).toMatchObject({
    'http.request.method': 'GET',
    'http.route': '/api/v1/meta/objects',
    'http.response.status_code': 200,
  });
  const trace = (): SpanRecord[] => receiver.spans.filter((s) => s.traceId === root.traceId);
  const childrenOf = (parent: SpanRecord): SpanRecord[] => trace().filter((s) => s.parentSpanId === parent.spanId);
  const busRequest = await pollUntil(() => childrenOf(root).find((s) => s.kind === CLIENT && s.name.startsWith('bus request identity.')), {
    ...wait,
    what: 'the bus request span under the HTTP span',
  });
  expect(busRequest.service).toBe(services.objects);
  const handler = await pollUntil(
    () => childrenOf(busRequest).find((s) => s.kind === SERVER && s.name === busRequest.name.replace('bus request', 'bus handle')),
    { ...wait, what: "identity's handler span under the bus request" },
  );
  expect(handler.service).toBe(services.identity);
  const identitySql = await pollUntil(
    () => {
      const sql = childrenOf(handler).filter((s) => s.attributes['db.system.name'] === 'postgresql');
      return sql.length > 0 ? sql : undefined;
    },
    { ...wait, what: "identity's SQL spans under its handler" },
  );
  expect(
    identitySql.every((s) => s.kind === CLIENT && s.service === services.identity && /\S/.test(String(s.attributes['db.query.text']))),
  ).toBe(true);
  // objects' own statements (its metadata) belong to the same trace, in the objects process.
  await pollUntil(
    () =>
      trace().find(
        (s) =>
          s.service === services.objects &&
          s.attributes['db.system.name'] === 'postgresql' &&
          /"?objects"?\./.test(String(s.attributes['db.query.text'])),
      ),
    { ...wait, what: "objects' SQL spans" },
  );
  // One root; every other span's parent is in the trace.
  const ids = new Set(trace().map((s) => s.spanId));
  expect(trace().filter((s) => s.parentSpanId === undefined)).toEqual([root]);
  expect(trace().filter((s) => s.parentSpanId !== undefined && !ids.has(s.parentSpanId))).toEqual([]);
  // Statement text only, never bound values: the token's signature is nowhere in any span.
  expect(JSON.stringify(receiver.spans)).not.toContain(token.split('.')[2]);

  // A caller's own traceparent is continued.
  const traceId = randomBytes(16).toString('hex');
  await fetch(`${objectsBase}/health/live`, { headers: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` } });
  await pollUntil(() => receiver.spans.find((s) => s.traceId === traceId && s.name === 'GET /health/live'), {
    ...wait,
    what: 'the continued trace',
  });
}

function baseEnv(db: TestDatabase, receiver: Receiver): Record<string, string> {
  return {
    DATABASE_URL: db.url,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    CUSTODIAN_ADMIN_EMAIL: ADMIN.email,
    CUSTODIAN_ADMIN_PASSWORD: ADMIN.password,
    CUSTODIAN_SHUTDOWN_GRACE_MS: '2000',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
  };
}

describe('tracing across two processes over NATS', () => {
  let db: TestDatabase;
  let receiver: Receiver;
  const namespace = `e2etr${randomBytes(4).toString('hex')}`;
  const procs: ServiceProcess[] = [];
  let identity: string;
  let objects: string;

  beforeAll(async () => {
    receiver = await startReceiver();
    db = await createTestDatabase('e2e_tracing', { migrated: true });
    const env = {
      ...baseEnv(db, receiver),
      NATS_URL,
      CUSTODIAN_BUS_NAMESPACE: namespace,
      CUSTODIAN_MASTER_KEY: randomBytes(32).toString('base64'),
    };
    procs.push(startProcess('dist/apps/identity/main.js', env));
    identity = `http://127.0.0.1:${await procs[0].port()}`;
    procs.push(startProcess('dist/apps/objects/main.js', env));
    objects = `http://127.0.0.1:${await procs[1].port()}`;
  }, 90_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    const nc = await connect({ servers: NATS_URL });
    await (await nc.jetstreamManager()).streams.delete(`${namespace.toUpperCase()}_EVENTS`).catch(() => undefined);
    await nc.close();
    await db?.drop();
    await receiver?.close();
  });

  it('one trace: objects HTTP → NATS request → identity handler → SQL', async () => {
    await assertOneTrace(receiver, objects, identity, { objects: 'custodian-objects', identity: 'custodian-identity' });
  });
});

describe('tracing in the all-in-one (in-process bus)', () => {
  let db: TestDatabase;
  let receiver: Receiver;
  let proc: ServiceProcess;
  let base: string;
  const dataDir = `/tmp/custodian-e2e-tracing-${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    receiver = await startReceiver();
    db = await createTestDatabase('e2e_tracing_aio', { migrated: true });
    proc = startProcess('dist/all-in-one/main.js', {
      ...baseEnv(db, receiver),
      CUSTODIAN_DATA_DIR: dataDir,
      CUSTODIAN_MASTER_KEY: randomBytes(32).toString('base64'),
      CUSTODIAN_DEMO: 'false',
    });
    base = `http://127.0.0.1:${await proc.port()}`;
  }, 90_000);

  afterAll(async () => {
    await proc?.stop();
    await db?.drop();
    await receiver?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('one trace: HTTP → in-process bus request → identity handler → SQL', async () => {
    await assertOneTrace(receiver, base, base, { objects: 'custodian', identity: 'custodian' });
  });
});
