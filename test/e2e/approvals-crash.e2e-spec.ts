import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { pollUntil } from '../support/poll';
import { startProcess, type ServiceProcess } from '../support/process';

const ADMIN = { email: 'admin@crash.test', password: 'approvals-crash-password' };
const PASSWORD = 'a-long-enough-password';
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- API answers, checked field by field
type Json = any;

/**
 * A real crash between approval and apply: the built all-in-one, with the test-only fault hook
 * CUSTODIAN_FAULT_STALL_AFTER_APPLY=1, stops right after objects committed the approved change and
 * before approvals recorded it; the test kills it with SIGKILL there, starts it again on the same
 * data directory and database, and the sweep finishes the action: applied, the record written once.
 */
describe('approvals: kill -9 between approval and apply', () => {
  let db: TestDatabase;
  let pg: Client;
  let proc: ServiceProcess | undefined;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'custodian-crash-'));
  const masterKey = randomBytes(32).toString('base64');

  const launch = async (extra: Record<string, string>): Promise<string> => {
    proc = startProcess('dist/all-in-one/main.js', {
      DATABASE_URL: db.url,
      CUSTODIAN_DATA_DIR: dataDir,
      CUSTODIAN_MASTER_KEY: masterKey,
      CUSTODIAN_ADMIN_EMAIL: ADMIN.email,
      CUSTODIAN_ADMIN_PASSWORD: ADMIN.password,
      CUSTODIAN_DEMO: 'false',
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      ...extra,
    });
    const url = `http://127.0.0.1:${await proc.port()}`;
    await pollUntil(async () => (await fetch(`${url}/health/ready`)).status === 200, { what: 'ready', timeoutMs: 30_000 });
    return url;
  };
  const api = async (url: string, method: string, p: string, token?: string, body?: unknown, status = 200): Promise<Json> => {
    const res = await fetch(`${url}/api/v1${p}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status !== status) throw new Error(`${method} ${p}: expected ${status}, got ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  const count = async (sql: string, params: unknown[]): Promise<number> => (await pg.query<{ n: number }>(sql, params)).rows[0].n;

  beforeAll(async () => {
    db = await createTestDatabase('e2e_approvals_crash');
    pg = new Client({ connectionString: db.url });
    await pg.connect();
  });

  afterAll(async () => {
    await proc?.stop('SIGKILL');
    await pg?.end();
    await db?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('the action approved before the kill is applied after the restart, and the record is written exactly once', async () => {
    // No sweep in the first life: the only apply is the approver's own, which the hook stalls.
    let url = await launch({ CUSTODIAN_FAULT_STALL_AFTER_APPLY: '1', CUSTODIAN_APPROVALS_SWEEP_MS: '0' });
    const admin = (await api(url, 'POST', '/auth/login', undefined, ADMIN)).accessToken as string;
    await api(
      url,
      'POST',
      '/meta/objects',
      admin,
      {
        name: 'deal',
        label: 'Deal',
        fields: [
          { name: 'title', type: 'text' },
          { name: 'amount', type: 'number' },
        ],
      },
      201,
    );
    const set = await api(
      url,
      'POST',
      '/permission-sets',
      admin,
      { name: 'Reps', objects: { deal: { allowRead: true, allowCreate: true, allowEdit: true } }, fields: { deal: { '*': 'edit' } } },
      201,
    );
    const rep = await api(url, 'POST', '/users', admin, { email: 'rep@crash.test', displayName: 'rep', password: PASSWORD }, 201);
    await api(url, 'POST', `/permission-sets/${set.id}/assignments`, admin, { userId: rep.userId ?? rep.id }, 201);
    const repToken = (await api(url, 'POST', '/auth/login', undefined, { email: 'rep@crash.test', password: PASSWORD }))
      .accessToken as string;
    const deal = await api(url, 'POST', '/data/deal', repToken, { title: 'Crash', amount: 100 }, 201);
    const filed = await api(
      url,
      'POST',
      '/approvals',
      repToken,
      { kind: 'record.update', object: 'deal', recordId: deal.id, values: { amount: 250 }, justification: 'renewal' },
      201,
    );

    const approving = fetch(`${url}/api/v1/approvals/${filed.id}/approve`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
      body: '{}',
    }).then(
      (res) => `answered ${res.status}`,
      () => 'connection lost',
    );
    const first = proc!;
    await pollUntil(() => first.output.some((line) => line.includes('fault injection: stalled after objects applied')), {
      what: 'the apply to reach the fault hook',
      timeoutMs: 20_000,
    });
    first.proc.kill('SIGKILL');
    await pollUntil(() => first.proc.signalCode === 'SIGKILL', { what: 'the process to die' });
    expect(await approving).toBe('connection lost');

    // The window was hit: objects committed the change, approvals still says approved.
    expect((await pg.query<{ state: string }>('SELECT state FROM approvals.pending_action WHERE id = $1', [filed.id])).rows[0].state).toBe(
      'approved',
    );
    const updatedEvents = `SELECT count(*)::int AS n FROM objects.outbox WHERE payload->>'action' = 'objects.record.updated' AND payload->'target'->>'id' = $1`;
    expect(await count(updatedEvents, [deal.id])).toBe(1);

    url = await launch({ CUSTODIAN_APPROVALS_SWEEP_MS: '100', CUSTODIAN_APPROVALS_APPLY_RETRY_MS: '200' });
    const admin2 = (await api(url, 'POST', '/auth/login', undefined, ADMIN)).accessToken as string;
    const done = await pollUntil(
      async () => {
        const a = await api(url, 'GET', `/approvals/${filed.id}`, admin2);
        return a.state !== 'approved' ? a : undefined;
      },
      { what: 'the sweep to finish the action', timeoutMs: 30_000 },
    );
    expect(done).toMatchObject({ state: 'applied', outcome: { version: 2 } });
    expect(await api(url, 'GET', `/data/deal/${deal.id}`, repToken)).toMatchObject({ amount: 250, version: 2 });
    expect(await count(updatedEvents, [deal.id])).toBe(1);
    const events = await pg.query<{ action: string; n: number }>(
      `SELECT payload->>'action' AS action, count(*)::int AS n FROM approvals.outbox WHERE payload->'target'->>'id' = $1 GROUP BY 1 ORDER BY 1`,
      [filed.id],
    );
    expect(events.rows).toEqual([
      { action: 'approvals.action.applied', n: 1 },
      { action: 'approvals.action.approved', n: 1 },
      { action: 'approvals.action.requested', n: 1 },
    ]);
    expect(await proc!.stop('SIGTERM')).toBe(0);
  }, 120_000);
});
