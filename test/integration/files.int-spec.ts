import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Client } from 'pg';
import { apiClient, type Json } from '../support/api';
import { login, startTestHost, type TestHost } from '../support/host';
import { pollUntil } from '../support/poll';

const PASSWORD = 'a-long-enough-password';
const BUCKET = 'custodian-files';
const MAX_BYTES = 4096;

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer: import('node:http').Server;
}
// s3rver ships no types; only its constructor, run and close are used.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require('s3rver') as new (options: Record<string, unknown>) => S3rverInstance;

/** Where a suite's content lands, and how it counts what is stored (for "nothing left behind"). */
interface Driver {
  name: 'local' | 's3';
  env: Record<string, string>;
  /** Stored content keys (relative), temporary upload files included. */
  keys(): Promise<string[]>;
  /** Headers of every PUT the store received (s3 only). */
  puts: Array<IncomingMessage['headers']>;
  stop(): Promise<void>;
}

function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const e of entries) {
      const full = path.join(dir, e);
      if (statSync(full).isDirectory()) walk(full);
      else out.push(path.relative(root, full));
    }
  };
  walk(root);
  return out.sort();
}

async function localDriver(): Promise<Driver> {
  const dir = mkdtempSync(path.join(tmpdir(), 'custodian-files-'));
  const root = path.join(dir, 'store');
  return {
    name: 'local',
    env: { CUSTODIAN_FILES_DIR: root },
    keys: () => Promise.resolve(listFiles(root)),
    puts: [],
    stop: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
  };
}

/** A real S3 protocol server (s3rver) on loopback, a random port and a temp dir. */
async function s3Driver(): Promise<Driver> {
  const dir = mkdtempSync(path.join(tmpdir(), 'custodian-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: BUCKET }] });
  const { port } = await server.run();
  const puts: Array<IncomingMessage['headers']> = [];
  server.httpServer.prependListener('request', (req: IncomingMessage) => {
    if (req.method === 'PUT') puts.push(req.headers);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  // The SDK's default credential chain reads these (Custodian's settings never carry credentials).
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
  return {
    name: 's3',
    env: {
      CUSTODIAN_FILES_DRIVER: 's3',
      CUSTODIAN_FILES_S3_BUCKET: BUCKET,
      CUSTODIAN_FILES_S3_ENDPOINT: endpoint,
      CUSTODIAN_FILES_S3_FORCE_PATH_STYLE: 'true',
      CUSTODIAN_FILES_S3_SSE: 'aws:kms',
      CUSTODIAN_FILES_S3_KMS_KEY_ID: 'alias/custodian-test',
    },
    async keys() {
      const out = await client.send(new ListObjectsV2Command({ Bucket: BUCKET }));
      return (out.Contents ?? []).map((o) => o.Key!).sort();
    },
    puts,
    async stop() {
      client.destroy();
      await server.close();
      process.env.AWS_ACCESS_KEY_ID = saved.id;
      process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
      if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
      if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const CONTRACT = {
  name: 'contract',
  label: 'Contract',
  sharingModel: 'private',
  fields: [
    { name: 'title', type: 'text' },
    { name: 'doc', type: 'file' },
    { name: 'secret_doc', type: 'file', sensitive: true },
  ],
};

describe.each([
  ['local disk', localDriver],
  ['S3 (s3rver on loopback)', s3Driver],
])('uploaded files on %s', (_label, makeDriver) => {
  let driver: Driver;
  let t: TestHost;
  let base: string;
  let pg: Client;
  let admin: string;
  let orgId: string;
  let otherAdmin: string;
  const tokens: Record<string, string> = {};
  const ids: Record<string, string> = {};

  const { call, ok } = apiClient(() => base);
  const table = (): string => `objects."r_${orgId.replace(/-/g, '')}_contract"`;
  const auditRows = async (action: string, targetId: string): Promise<Json[]> =>
    (
      await pg.query("SELECT payload FROM objects.outbox WHERE payload->>'action' = $1 AND payload->'target'->>'id' = $2", [
        action,
        targetId,
      ])
    ).rows;
  const version = async (id: string): Promise<number> =>
    (await pg.query(`SELECT version FROM ${table()} WHERE id = $1`, [id])).rows[0].version;

  /** PUT raw bytes to a file field. */
  const upload = async (
    token: string | undefined,
    id: string,
    field: string,
    body: Buffer | string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: Json; headers: Headers }> => {
    const res = await fetch(`${base}/api/v1/data/contract/${id}/files/${field}`, {
      method: 'PUT',
      headers: {
        'content-type': 'application/pdf',
        ...(headers['if-match'] ? {} : { 'if-match': `"${await version(id)}"` }),
        'content-disposition': 'attachment; filename="report.pdf"',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body,
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Json) : undefined, headers: res.headers };
  };
  const download = async (token: string, id: string, field: string): Promise<{ status: number; bytes: Buffer; headers: Headers }> => {
    const res = await fetch(`${base}/api/v1/data/contract/${id}/files/${field}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()), headers: res.headers };
  };
  const problem = (bytes: Buffer): Json => JSON.parse(bytes.toString('utf8'));

  beforeAll(async () => {
    driver = await makeDriver();
    t = await startTestHost(`files_${driver.name}`, {
      ...driver.env,
      CUSTODIAN_FILES_MAX_BYTES: String(MAX_BYTES),
      CUSTODIAN_FILES_ALLOWED_TYPES: 'application/pdf,text/plain,image/*',
    });
    base = t.host.url;
    pg = new Client({ connectionString: t.db.url });
    await pg.connect();
    const session = await login(base);
    admin = session.accessToken;
    orgId = session.orgId;
    // A file is set only by an upload to an existing record: it cannot be required, unique or defaulted.
    for (const bad of [{ required: true }, { unique: true }, { default: null }]) {
      const res = await call('POST', '/meta/objects', admin, { ...CONTRACT, fields: [{ name: 'doc', type: 'file', ...bad }] });
      expect([JSON.stringify(bad), res.status]).toEqual([JSON.stringify(bad), 400]);
    }
    await ok(call('POST', '/meta/objects', admin, CONTRACT), 201);
    const legal = await ok(
      call('POST', '/permission-sets', admin, {
        name: 'Legal',
        objects: { contract: { allowRead: true, allowCreate: true, allowEdit: true, allowDelete: true } },
        fields: { contract: { secret_doc: 'edit' } },
      }),
      201,
    );
    const readDocs = await ok(
      call('POST', '/permission-sets', admin, {
        name: 'Contract readers',
        objects: { contract: { allowRead: true, allowEdit: true } },
        fields: { contract: { doc: 'read' } },
      }),
      201,
    );
    const auditor = await ok(
      call('POST', '/permission-sets', admin, {
        name: 'Contract auditor',
        systemCapabilities: ['view_audit'],
        objects: { contract: { allowRead: true } },
      }),
      201,
    );
    for (const [name, set] of [
      ['olga', legal.id],
      ['paul', legal.id],
      ['rita', readDocs.id],
      ['aud', auditor.id],
    ] as const) {
      const u = await ok(call('POST', '/users', admin, { email: `${name}@test.local`, displayName: name, password: PASSWORD }), 201);
      await ok(call('POST', `/permission-sets/${set}/assignments`, admin, { userId: u.id }), 201);
      ids[name] = u.id;
      tokens[name] = (await login(base, { email: `${name}@test.local`, password: PASSWORD })).accessToken;
    }
    ids.shared = (await ok(call('POST', '/data/contract', tokens.olga, { title: 'shared with rita' }), 201)).id;
    ids.private = (await ok(call('POST', '/data/contract', tokens.olga, { title: 'olga only' }), 201)).id;
    await ok(
      call('POST', `/data/contract/${ids.shared}/shares`, tokens.olga, { granteeType: 'user', granteeId: ids.rita, accessLevel: 'edit' }),
      201,
    );
    await ok(
      call('POST', `/data/contract/${ids.shared}/shares`, tokens.olga, { granteeType: 'user', granteeId: ids.aud, accessLevel: 'read' }),
      201,
    );
    const org2 = await ok(call('POST', '/orgs', admin, { name: 'Globex' }), 201);
    otherAdmin = (await login(base, { email: 'admin@test.local', password: 'correct-horse-battery-staple', orgId: org2.id } as never))
      .accessToken;
  }, 60_000);

  afterAll(async () => {
    await pg?.end();
    await t?.stop();
    await driver?.stop();
  });

  it('uploads, downloads, replaces and deletes a file; the record version bumps; each step is audited', async () => {
    const first = Buffer.from('%PDF-1.7 first version\n');
    const before = await version(ids.shared);
    const up = await upload(tokens.olga, ids.shared, 'doc', first);
    expect(up.status).toBe(200);
    expect(up.body.version).toBe(before + 1);
    expect(up.headers.get('etag')).toBe(`"${before + 1}"`);
    expect(up.body.doc).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      name: 'report.pdf',
      size: first.length,
      contentType: 'application/pdf',
      sha256: createHash('sha256').update(first).digest('hex'),
      uploadedAt: expect.any(String),
    });
    const key = `${orgId}/contract/${ids.shared}/doc/${up.body.doc.id}`;
    expect(await driver.keys()).toEqual([key]);
    // The record read answers the metadata, never a storage path.
    const rec = await ok(call('GET', `/data/contract/${ids.shared}`, tokens.olga));
    expect(rec.doc).toEqual(up.body.doc);
    expect(JSON.stringify(rec)).not.toContain(key);

    const down = await download(tokens.olga, ids.shared, 'doc');
    expect(down.status).toBe(200);
    expect(down.bytes.equals(first)).toBe(true);
    expect(down.headers.get('content-type')).toBe('application/pdf');
    expect(down.headers.get('content-disposition')).toBe(`attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`);
    expect(down.headers.get('x-content-type-options')).toBe('nosniff');

    const second = Buffer.from('plain text, second version');
    const replaced = await upload(tokens.olga, ids.shared, 'doc', second, {
      'content-type': 'text/plain; charset=utf-8',
      'content-disposition': `attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.txt`,
    });
    expect(replaced.status).toBe(200);
    expect(replaced.body.doc).toMatchObject({ name: 'résumé.txt', contentType: 'text/plain', size: second.length });
    // The old content is removed once the new value committed.
    expect(await driver.keys()).toEqual([`${orgId}/contract/${ids.shared}/doc/${replaced.body.doc.id}`]);
    const again = await download(tokens.olga, ids.shared, 'doc');
    expect(again.bytes.equals(second)).toBe(true);
    expect(again.headers.get('content-disposition')).toBe(`attachment; filename="r_sum_.txt"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt`);

    // A stale version changes nothing and stores nothing.
    const stale = await upload(tokens.olga, ids.shared, 'doc', 'stale', { 'if-match': `"${before}"`, 'content-type': 'text/plain' });
    expect([stale.status, stale.body.code]).toEqual([412, 'precondition_failed']);
    expect(await driver.keys()).toHaveLength(1);

    const uploaded = await auditRows('objects.record.file.uploaded', ids.shared);
    expect(uploaded).toHaveLength(2);
    expect(uploaded[1].payload.details.changes.doc).toEqual({ from: up.body.doc, to: replaced.body.doc });
    expect(await auditRows('objects.record.file.downloaded', ids.shared)).toHaveLength(2);

    const del = await fetch(`${base}/api/v1/data/contract/${ids.shared}/files/doc`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${tokens.olga}` },
    });
    expect(del.status).toBe(200);
    expect(((await del.json()) as Json).doc).toBeNull();
    expect(await driver.keys()).toEqual([]);
    expect(await auditRows('objects.record.file.deleted', ids.shared)).toHaveLength(1);
    expect((await download(tokens.olga, ids.shared, 'doc')).status).toBe(404);
    const twice = await call('DELETE', `/data/contract/${ids.shared}/files/doc`, tokens.olga);
    expect(twice.status).toBe(404);
  });

  it('passes the server-side encryption settings through to the store', async () => {
    const res = await upload(tokens.olga, ids.private, 'doc', 'encrypted at rest', { 'content-type': 'text/plain' });
    expect(res.status).toBe(200);
    if (driver.name === 's3') {
      const put = driver.puts.at(-1)!;
      expect(put['x-amz-server-side-encryption']).toBe('aws:kms');
      expect(put['x-amz-server-side-encryption-aws-kms-key-id']).toBe('alias/custodian-test');
    } else {
      // Local content is private to the service user.
      const file = path.join(driver.env.CUSTODIAN_FILES_DIR, ...(await driver.keys())[0].split('/'));
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(statSync(driver.env.CUSTODIAN_FILES_DIR).mode & 0o777).toBe(0o700);
    }
    await ok(call('DELETE', `/data/contract/${ids.private}/files/doc`, tokens.olga));
    expect(await driver.keys()).toEqual([]);
  });

  it('enforces field edit and read levels: a read-only field refuses uploads (403, nothing stored); a hidden field refuses downloads (403)', async () => {
    const put = await upload(tokens.rita, ids.shared, 'doc', 'not allowed', { 'content-type': 'text/plain' });
    expect([put.status, put.body.code]).toEqual([403, 'field_not_editable']);
    const hidden = await upload(tokens.rita, ids.shared, 'secret_doc', 'not allowed', { 'content-type': 'text/plain' });
    expect([hidden.status, hidden.body.code]).toEqual([403, 'field_not_editable']);
    expect(await driver.keys()).toEqual([]);
    const del = await call('DELETE', `/data/contract/${ids.shared}/files/doc`, tokens.rita);
    expect([del.status, del.body.code]).toEqual([403, 'field_not_editable']);

    // Rita reads doc (read level) but not secret_doc (sensitive, not named for her).
    await ok(upload(tokens.olga, ids.shared, 'doc', 'readable by rita', { 'content-type': 'text/plain' }));
    await ok(upload(tokens.olga, ids.shared, 'secret_doc', 'not for rita', { 'content-type': 'text/plain' }));
    const readable = await download(tokens.rita, ids.shared, 'doc');
    expect([readable.status, readable.bytes.toString()]).toEqual([200, 'readable by rita']);
    const secret = await download(tokens.rita, ids.shared, 'secret_doc');
    expect([secret.status, problem(secret.bytes).code]).toEqual([403, 'field_not_readable']);
    // An unknown field answers exactly like a hidden one.
    const unknown = await download(tokens.rita, ids.shared, 'no_such_field');
    expect([unknown.status, problem(unknown.bytes).code]).toEqual([403, 'field_not_readable']);
    // Olga sees both; the record read hides secret_doc's metadata from Rita as well.
    expect((await download(tokens.olga, ids.shared, 'secret_doc')).bytes.toString()).toBe('not for rita');
    expect((await ok(call('GET', `/data/contract/${ids.shared}`, tokens.rita))).secret_doc).toBeUndefined();
  });

  it('an audit reader sees file events of a field it cannot read as changed but hidden, never the metadata', async () => {
    type View = { event: Json; redacted?: boolean };
    const events = async (token: string): Promise<View[]> =>
      ((await ok(call('GET', `/audit/events?recordId=${ids.shared}&limit=100`, token))) as { items: View[] }).items;
    const secretUpload = (e: View): boolean => e.event.action === 'objects.record.file.uploaded' && e.event.details?.changes?.secret_doc;
    const seen = await pollUntil(
      async () => {
        const all = await events(tokens.aud);
        return all.some(secretUpload) &&
          all.some((e) => e.event.action === 'objects.record.file.downloaded' && e.event.details?.values?.secret_doc)
          ? all
          : undefined;
      },
      { what: 'file events in the audit store' },
    );
    const upload = seen.find(secretUpload)!;
    expect(upload.redacted).toBe(true);
    expect(upload.event.details.changes.secret_doc).toEqual({ hidden: true });
    expect(
      seen.find((e) => e.event.action === 'objects.record.file.downloaded' && e.event.details.values.secret_doc)!.event.details.values
        .secret_doc,
    ).toEqual({
      hidden: true,
    });
    // doc is readable for the auditor: its metadata is shown.
    const docUpload = seen.find((e) => e.event.action === 'objects.record.file.uploaded' && e.event.details.changes.doc)!;
    expect(docUpload.event.details.changes.doc.to).toMatchObject({
      name: expect.any(String),
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    // The stored event holds the metadata; the auditor's view carries none of it.
    const stored = (await auditRows('objects.record.file.uploaded', ids.shared)).find((r) => r.payload.details.changes.secret_doc)!;
    const secretHash = stored.payload.details.changes.secret_doc.to.sha256 as string;
    expect(secretHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(seen)).not.toContain(secretHash);
  });

  it('a record the caller cannot read is 404, in any org; an agent cannot upload or delete (403)', async () => {
    const before = await driver.keys();
    // Paul may edit doc on contracts he can see; Olga's private contract he cannot.
    const notShared = await upload(tokens.paul, ids.private, 'doc', 'x', { 'content-type': 'text/plain' });
    expect([notShared.status, notShared.body.code]).toEqual([404, 'not_found']);
    expect((await download(tokens.paul, ids.private, 'doc')).status).toBe(404);
    expect((await download(tokens.rita, ids.private, 'doc')).status).toBe(404);
    expect((await call('DELETE', `/data/contract/${ids.private}/files/doc`, tokens.paul)).status).toBe(404);
    const otherOrg = await upload(otherAdmin, ids.shared, 'doc', 'x', { 'content-type': 'text/plain' });
    expect(otherOrg.status).toBe(404);
    expect((await download(otherAdmin, ids.shared, 'doc')).status).toBe(404);
    expect((await call('DELETE', `/data/contract/${ids.shared}/files/doc`, otherAdmin)).status).toBe(404);
    const missing = await upload(tokens.olga, '00000000-0000-4000-8000-000000000000', 'doc', 'x', {
      'content-type': 'text/plain',
      'if-match': '"1"',
    });
    expect(missing.status).toBe(404);

    const res = await fetch(`${base}/api/v1/auth/token-exchange`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: admin,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        scope: 'data:read data:write',
        client_id: 'test-agent',
        agent_name: 'Test agent',
      }),
    });
    expect(res.status).toBe(200);
    const agent = ((await res.json()) as { access_token: string }).access_token;
    const byAgent = await upload(agent, ids.shared, 'doc', 'from an agent', { 'content-type': 'text/plain' });
    expect([byAgent.status, byAgent.body.code]).toEqual([403, 'forbidden']);
    const delByAgent = await call('DELETE', `/data/contract/${ids.shared}/files/doc`, agent);
    expect([delByAgent.status, delByAgent.body.code]).toEqual([403, 'forbidden']);
    expect(await driver.keys()).toEqual(before);
  });

  it('refuses oversize (413), disallowed types (415), chunked bodies and path-like names (4xx), leaving nothing behind', async () => {
    const before = await driver.keys();
    const big = await upload(tokens.olga, ids.private, 'doc', Buffer.alloc(MAX_BYTES + 1, 1));
    expect([big.status, big.body.code]).toEqual([413, 'payload_too_large']);
    const exact = await upload(tokens.olga, ids.private, 'doc', Buffer.alloc(MAX_BYTES, 2));
    expect(exact.status).toBe(200);
    await ok(call('DELETE', `/data/contract/${ids.private}/files/doc`, tokens.olga));

    for (const type of ['text/html', 'application/json', 'image/svg+xml; charset=utf-8', 'image']) {
      // Valid JSON, so that the JSON body parser (which reads JSON bodies before any route) lets it through to the type check.
      const res = await upload(tokens.olga, ids.private, 'doc', '{"a":1}', { 'content-type': type });
      // image/svg+xml is an image/* type and therefore accepted; it is always served as an attachment with nosniff.
      if (type.startsWith('image/svg')) {
        expect(res.status).toBe(200);
        await ok(call('DELETE', `/data/contract/${ids.private}/files/doc`, tokens.olga));
      } else expect([type, res.status, res.body.code]).toEqual([type, 415, 'unsupported_media_type']);
    }
    const gzipped = await upload(tokens.olga, ids.private, 'doc', 'x', { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
    expect([gzipped.status, gzipped.body.code]).toEqual([415, 'unsupported_media_type']);
    const noType = await fetch(`${base}/api/v1/data/contract/${ids.private}/files/doc`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${tokens.olga}`, 'if-match': `"${await version(ids.private)}"` },
      body: new Uint8Array([1, 2, 3]),
    });
    expect(noType.status).toBe(415);

    const chunked = await fetch(`${base}/api/v1/data/contract/${ids.private}/files/doc`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${tokens.olga}`, 'content-type': 'text/plain', 'if-match': `"${await version(ids.private)}"` },
      body: new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode('streamed without a length'));
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(400);

    for (const name of ['../../etc/passwd', '..', 'a%5Cb.txt', 'dir/x.pdf', '%2e%2e%2fescape', 'nul%00.pdf']) {
      const res = await upload(tokens.olga, ids.private, 'doc', 'x', {
        'content-disposition': name.includes('%') ? `attachment; filename*=UTF-8''${name}` : `attachment; filename="${name}"`,
      });
      expect([name, res.status]).toEqual([name, 400]);
    }
    for (const field of ['..%2F..%2Fetc', 'DOC', 'doc%00', '.doc']) {
      const res = await upload(tokens.olga, ids.private, field, 'x');
      expect([field, res.status, res.body.code]).toEqual([field, 400, 'validation_failed']);
      expect((await download(tokens.olga, ids.private, field)).status).toBe(400);
    }
    // A dot-segment is resolved by the client already: it never reaches the files route.
    expect((await upload(tokens.olga, ids.private, '%2e%2e', 'x')).status).toBe(404);
    const titleField = await upload(tokens.olga, ids.private, 'title', 'x');
    expect([titleField.status, titleField.body.code]).toEqual([400, 'validation_failed']);
    const badObject = await fetch(`${base}/api/v1/data/..%2F..%2Fcontract/${ids.private}/files/doc`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${tokens.olga}`, 'content-type': 'text/plain', 'if-match': '"1"' },
      body: 'x',
    });
    expect(badObject.status).toBe(404);
    // A file field is only ever written by its files route.
    const patch = await call(
      'PATCH',
      `/data/contract/${ids.private}`,
      tokens.olga,
      { doc: null },
      { 'if-match': `"${await version(ids.private)}"` },
    );
    expect(patch.status).toBe(400);
    expect(await driver.keys()).toEqual(before);
  });

  it('a failed commit leaves no content behind and the record unchanged', async () => {
    const before = await driver.keys();
    const v = await version(ids.private);
    const docBefore = (await ok(call('GET', `/data/contract/${ids.private}`, tokens.olga))).doc;
    // A trigger makes the record's UPDATE fail after the content was written.
    await pg.query(`CREATE FUNCTION objects.fail_upload() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'simulated commit failure'; END $$`);
    await pg.query(`CREATE TRIGGER fail_upload BEFORE UPDATE ON ${table()} FOR EACH ROW EXECUTE FUNCTION objects.fail_upload()`);
    try {
      const res = await upload(tokens.olga, ids.private, 'doc', 'never committed', { 'content-type': 'text/plain' });
      expect(res.status).toBeGreaterThanOrEqual(500);
    } finally {
      await pg.query(`DROP TRIGGER fail_upload ON ${table()}`);
      await pg.query('DROP FUNCTION objects.fail_upload()');
    }
    expect(await driver.keys()).toEqual(before);
    expect(await version(ids.private)).toBe(v);
    const rec = await ok(call('GET', `/data/contract/${ids.private}`, tokens.olga));
    expect(rec.doc).toEqual(docBefore);
  });

  it('deleting the record removes its content; where changes of the object need approval, files cannot be changed (409)', async () => {
    const rec = await ok(call('POST', '/data/contract', tokens.olga, { title: 'short-lived' }), 201);
    const up = await upload(tokens.olga, rec.id, 'doc', 'goes with its record', { 'content-type': 'text/plain' });
    expect(up.status).toBe(200);
    expect(await driver.keys()).toContain(`${orgId}/contract/${rec.id}/doc/${up.body.doc.id}`);
    await ok(call('DELETE', `/data/contract/${rec.id}`, tokens.olga), 204);
    expect(await driver.keys()).not.toContain(`${orgId}/contract/${rec.id}/doc/${up.body.doc.id}`);

    const kept = await upload(tokens.olga, ids.private, 'doc', 'stays', { 'content-type': 'text/plain' });
    expect(kept.status).toBe(200);
    const before = await driver.keys();
    await ok(
      call('POST', '/bundles/apply', admin, {
        bundle: {
          apiVersion: 'custodian.dev/v1',
          kind: 'Bundle',
          name: 'gates',
          approvalPolicies: [{ name: 'Contract edits', object: 'contract', operations: ['update'] }],
        },
      }),
    );
    const gated = await upload(tokens.olga, ids.private, 'doc', 'would bypass the approval', { 'content-type': 'text/plain' });
    expect([gated.status, gated.body.code]).toEqual([409, 'conflict']);
    const gatedDelete = await call('DELETE', `/data/contract/${ids.private}/files/doc`, tokens.olga);
    expect([gatedDelete.status, gatedDelete.body.code]).toEqual([409, 'conflict']);
    expect(await driver.keys()).toEqual(before);
    // Reading is not a change: downloads still work.
    expect((await download(tokens.olga, ids.private, 'doc')).bytes.toString()).toBe('stays');
  });
});
