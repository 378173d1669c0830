import { randomBytes } from 'node:crypto';
import { ApplyRecordOperation, DryRunRecordOperation, type RecordOperationResult } from '@custodian/contracts';
import { NatsBus } from '@custodian/platform';
import { login, startTestHost, type TestHost } from '../support/host';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are asserted field by field
type Json = any;

const PASSWORD = 'a-long-enough-password';

/**
 * Dry-run and apply-with-version (for approvals), on the in-process bus and on NATS: the dry-run
 * answers the decision, the current version and the readable field diff without writing; apply
 * re-checks the requester's permission, refuses stale versions and hidden fields.
 */
describe.each([
  ['in-process', {} as Record<string, string>],
  ['nats', { NATS_URL: process.env.NATS_URL ?? 'nats://127.0.0.1:4222', CUSTODIAN_BUS_NAMESPACE: `t${randomBytes(5).toString('hex')}` }],
])('objects record operations over the %s bus', (_name, env) => {
  let t: TestHost;
  let base: string;
  let admin: string;
  let orgId: string;
  let rep: string;
  let repToken: string;
  let other: string;
  let setId: string;

  const call = async (method: string, path: string, token: string, body?: unknown, headers: Record<string, string> = {}): Promise<Json> => {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), authorization: `Bearer ${token}`, ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const send = (contract: typeof DryRunRecordOperation | typeof ApplyRecordOperation, payload: Json): Promise<RecordOperationResult> =>
    t.host.bus.request(contract as typeof ApplyRecordOperation, payload, { timeoutMs: 5000 });

  beforeAll(async () => {
    t = await startTestHost(`objops_${_name.replace('-', '')}`, env);
    base = t.host.url;
    const session = await login(base);
    admin = session.accessToken;
    orgId = session.orgId;
    const set = await call('POST', '/permission-sets', admin, {
      name: 'Deals',
      objects: { deal: { allowRead: true, allowCreate: true, allowEdit: true, allowDelete: true } },
    });
    setId = set.body.id;
    for (const name of ['rep', 'other']) {
      const u = await call('POST', '/users', admin, { email: `${name}@test.local`, displayName: name, password: PASSWORD });
      await call('POST', `/permission-sets/${setId}/assignments`, admin, { userId: u.body.id });
      if (name === 'rep') rep = u.body.id;
      else other = u.body.id;
    }
    repToken = (await login(base, { email: 'rep@test.local', password: PASSWORD })).accessToken;
    const created = await call('POST', '/meta/objects', admin, {
      name: 'deal',
      label: 'Deal',
      fields: [
        { name: 'title', type: 'text' },
        { name: 'amount', type: 'number' },
        { name: 'cost', type: 'number', sensitive: true },
      ],
    });
    expect(created.status).toBe(201);
  }, 60_000);

  afterAll(async () => {
    if (t?.host.bus instanceof NatsBus) await t.host.bus.deleteStream().catch(() => undefined);
    await t?.stop();
  });

  it('dry-run of a create answers allowed + diff and writes nothing; apply writes once per idempotency key', async () => {
    const requester = { userId: rep, orgId };
    const dry = await send(DryRunRecordOperation, { requester, operation: 'create', object: 'deal', values: { title: 'Big', amount: 10 } });
    expect(dry).toMatchObject({
      outcome: 'allowed',
      version: null,
      diff: { title: { from: null, to: 'Big' }, amount: { from: null, to: 10 } },
    });
    expect((await call('GET', '/data/deal', repToken)).body.items).toEqual([]);
    const applied = await send(ApplyRecordOperation, {
      requester,
      operation: 'create',
      object: 'deal',
      values: { title: 'Big', amount: 10 },
      idempotencyKey: 'pa-1',
    });
    const again = await send(ApplyRecordOperation, {
      requester,
      operation: 'create',
      object: 'deal',
      values: { title: 'Big', amount: 10 },
      idempotencyKey: 'pa-1',
    });
    expect(applied).toMatchObject({ outcome: 'applied', version: 1 });
    expect(again.recordId).toBe(applied.recordId);
    expect((await call('GET', '/data/deal', repToken)).body.items).toHaveLength(1);
  });

  it('update: dry-run gives the current version; apply with a stale version is refused; hidden fields are refused', async () => {
    const requester = { userId: rep, orgId };
    const list = await call('GET', '/data/deal', repToken);
    const id = list.body.items[0].id;
    const dry = await send(DryRunRecordOperation, { requester, operation: 'update', object: 'deal', recordId: id, values: { amount: 20 } });
    expect(dry).toMatchObject({ outcome: 'allowed', version: 1, diff: { amount: { from: 10, to: 20 } } });
    // O2: a dry-run delete lists the fields the requester can read, never the sensitive one
    const dryDelete = await send(DryRunRecordOperation, { requester, operation: 'delete', object: 'deal', recordId: id });
    expect(dryDelete.outcome).toBe('allowed');
    expect(Object.keys(dryDelete.diff ?? {}).sort()).toEqual(['amount', 'title']);
    expect((await call('GET', `/data/deal/${id}`, repToken)).body.amount).toBe(10);
    const hidden = await send(ApplyRecordOperation, {
      requester,
      operation: 'update',
      object: 'deal',
      recordId: id,
      values: { cost: 1 },
      expectedVersion: 1,
    });
    expect(hidden).toMatchObject({ outcome: 'forbidden', code: 'field_not_editable' });
    const noVersion = await send(ApplyRecordOperation, {
      requester,
      operation: 'update',
      object: 'deal',
      recordId: id,
      values: { amount: 20 },
    });
    expect(noVersion.outcome).toBe('invalid');
    const ok = await send(ApplyRecordOperation, {
      requester,
      operation: 'update',
      object: 'deal',
      recordId: id,
      values: { amount: 20 },
      expectedVersion: 1,
    });
    expect(ok).toMatchObject({ outcome: 'applied', version: 2 });
    const stale = await send(ApplyRecordOperation, {
      requester,
      operation: 'update',
      object: 'deal',
      recordId: id,
      values: { amount: 30 },
      expectedVersion: 1,
    });
    expect(stale.outcome).toBe('stale');
    // another user of the org cannot see a private deal: not_found, never applied
    const foreign = await send(ApplyRecordOperation, {
      requester: { userId: other, orgId },
      operation: 'delete',
      object: 'deal',
      recordId: id,
      expectedVersion: 2,
    });
    expect(foreign.outcome).toBe('not_found');
  });

  it('P1: a requester who lost the permission is refused at apply time', async () => {
    const requester = { userId: rep, orgId };
    const id = (await call('GET', '/data/deal', repToken)).body.items[0].id;
    const assignments = await call('GET', `/permission-sets/${setId}/assignments`, admin);
    const mine = assignments.body.items.find((a: Json) => a.userId === rep);
    expect((await call('DELETE', `/permission-sets/${setId}/assignments/${mine.id}`, admin)).status).toBe(204);
    const res = await send(ApplyRecordOperation, { requester, operation: 'delete', object: 'deal', recordId: id, expectedVersion: 2 });
    expect(['forbidden', 'not_found']).toContain(res.outcome);
    expect((await call('GET', `/data/deal/${id}`, admin)).status).toBe(200);
  });
});
