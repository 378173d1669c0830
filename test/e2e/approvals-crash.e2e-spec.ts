import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { typedClient } from '../support/api';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { pollUntil } from '../support/poll';
import { startProcess, type ServiceProcess } from '../support/process';

const ADMIN = { email: 'admin@crash.test', password: 'approvals-crash-password' };
const PASSWORD = 'a-long-enough-password';

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
  /** An access token, signed in through the typed client (packages/client, used for every call but the one the kill cuts off). */
  const signIn = async (url: string, creds: { email: string; password: string }): Promise<string> =>
    (await typedClient(url).authLogin({ body: creds })).accessToken;
  const count = async (sql: string, params: unknown[]): Promise<number> => (await pg.query<{ n: number }>(sql, params)).rows[0].n;

  beforeAll(async () => {
    db = await createTestDatabase('e2e_approvals_crash', { migrated: true });
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
    const adminToken = await signIn(url, ADMIN);
    const admin = typedClient(url, adminToken);
    await admin.objectMetadataCreate({
      body: {
        name: 'deal',
        label: 'Deal',
        fields: [
          { name: 'title', type: 'text' },
          { name: 'amount', type: 'number' },
        ],
      },
    });
    const set = await admin.permissionSetsCreate({
      body: { name: 'Reps', objects: { deal: { allowRead: true, allowCreate: true, allowEdit: true } }, fields: { deal: { '*': 'edit' } } },
    });
    const rep = await admin.usersCreate({ body: { email: 'rep@crash.test', displayName: 'rep', password: PASSWORD } });
    await admin.permissionSetsAssign({ id: set.id, body: { userId: rep.id } });
    const repToken = await signIn(url, { email: 'rep@crash.test', password: PASSWORD });
    const repApi = typedClient(url, repToken);
    const deal = (await repApi.recordsCreate({ object: 'deal', body: { title: 'Crash', amount: 100 } })) as { id: string };
    expect(repApi.lastStatus).toBe(201);
    const filed = await repApi.pendingActionsFile({
      body: { kind: 'record.update', object: 'deal', recordId: deal.id, values: { amount: 250 }, justification: 'renewal' },
    });
    expect(repApi.lastStatus).toBe(201);

    // Raw HTTP: the call is cut off by the kill, and the test tells that from an answer.
    const approving = fetch(`${url}/api/v1/approvals/${filed.id}/approve`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
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
    const admin2 = typedClient(url, await signIn(url, ADMIN));
    const done = await pollUntil(
      async () => {
        const a = await admin2.pendingActionsGet({ id: filed.id });
        return a.state !== 'approved' ? a : undefined;
      },
      { what: 'the sweep to finish the action', timeoutMs: 30_000 },
    );
    expect(done).toMatchObject({ state: 'applied', outcome: { version: 2 } });
    expect(await typedClient(url, repToken).recordsGet({ object: 'deal', id: deal.id })).toMatchObject({ amount: 250, version: 2 });
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
