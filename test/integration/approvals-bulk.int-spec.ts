import { randomUUID } from 'node:crypto';
import { ApplyRecordOperations, type RequestOf } from '@custodian/contracts';
import type { Client } from 'pg';
import { apiClient, type Json } from '../support/api';
import { login, startTestHostWithDb, type TestHost } from '../support/host';

const PASSWORD = 'a-long-enough-password';
const AGENT = { clientId: 'sales-copilot', name: 'Sales copilot', scopes: ['data:read', 'data:write'] };

/**
 * Bulk decisions (`POST approvals/bulk`) take the batched path — one decision transaction per
 * chunk, one read check per object (objects.record.review-many), one apply request for the record
 * updates (objects.record.apply-many) — and every item must still answer exactly as its
 * single-item route would: refusals before the lock (unknown, self-approval, a target the reviewer
 * cannot read), under it (revision, already decided), at apply (P1 forbidden, P2 stale), an id named
 * twice, a statement that fails inside the batch (a unique value) and objects' receipts after a
 * crash between the two services' commits (P3: applied once).
 */
describe('approvals: bulk decisions in batches', () => {
  let t: TestHost;
  let db: Client;
  const { call, ok } = apiClient(() => t.host.url);
  const tokens: Record<string, string> = {};
  const users: Record<string, string> = {};
  const assignments: Record<string, string> = {};
  let orgId: string;
  const sets: Record<string, string> = {};

  const delegate = async (subject: string): Promise<string> =>
    (
      await ok(
        call('POST', '/auth/token-exchange', undefined, {
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: subject,
          subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
          scope: 'data:read data:write',
          client_id: AGENT.clientId,
          agent_name: AGENT.name,
        }),
      )
    ).access_token;
  const createDeal = async (token: string, title: string): Promise<Json> =>
    ok(call('POST', '/data/deal', token, { title, amount: 100 }), 201);
  const propose = async (token: string, recordId: string, values: Json): Promise<string> =>
    (await ok(call('POST', '/approvals', token, { kind: 'record.update', object: 'deal', recordId, values, justification: 'bulk' }), 201))
      .id;
  const outbox = async (schema: 'approvals' | 'objects', targetId: string): Promise<string[]> =>
    (
      await db.query(`SELECT payload->>'action' AS action FROM ${schema}.outbox WHERE payload->'target'->>'id' = $1 ORDER BY id`, [
        targetId,
      ])
    ).rows.map((r: { action: string }) => r.action);
  const bulk = (items: Json[]) => ok(call('POST', '/approvals/bulk', tokens.vp, { items }));

  beforeAll(async () => {
    ({ t, pg: db, admin: tokens.admin, orgId } = await startTestHostWithDb('approvals_bulk', { CUSTODIAN_APPROVALS_SWEEP_MS: '0' }));
    await ok(
      call('POST', '/meta/objects', tokens.admin, {
        name: 'deal',
        label: 'Deal',
        fields: [
          { name: 'title', type: 'text' },
          { name: 'amount', type: 'number' },
          { name: 'code', type: 'text', unique: true },
        ],
      }),
      201,
    );
    const set = async (name: string, body: Json): Promise<string> =>
      (await ok(call('POST', '/permission-sets', tokens.admin, { name, ...body }), 201)).id;
    sets.rep = await set('Reps', {
      objects: { deal: { allowRead: true, allowCreate: true, allowEdit: true } },
      fields: { deal: { '*': 'edit' } },
      integrationCapabilities: ['api_access', 'agent_access'],
    });
    sets.rep2 = await set('Reps 2', {
      objects: { deal: { allowRead: true, allowCreate: true, allowEdit: true } },
      fields: { deal: { '*': 'edit' } },
      integrationCapabilities: ['api_access', 'agent_access'],
    });
    // The VP may edit every deal (so she can propose one herself) and approves.
    sets.vp = await set('VP', {
      objects: { deal: { viewAllRecords: true, modifyAllRecords: true, allowEdit: true } },
      fields: { deal: { '*': 'edit' } },
      systemCapabilities: ['approve_actions'],
    });
    for (const name of ['rep', 'rep2', 'vp']) {
      const setId = sets[name];
      const u = await ok(call('POST', '/users', tokens.admin, { email: `${name}@bulk.test`, displayName: name, password: PASSWORD }), 201);
      users[name] = u.id;
      assignments[name] = (await ok(call('POST', `/permission-sets/${setId}/assignments`, tokens.admin, { userId: users[name] }), 201)).id;
      tokens[name] = (await login(t.host.url, { email: `${name}@bulk.test`, password: PASSWORD })).accessToken;
    }
    tokens.agent = await delegate(tokens.rep);
    tokens.agent2 = await delegate(tokens.rep2);
  }, 90_000);

  afterAll(async () => {
    await db?.end();
    await t?.stop();
  });

  it('every item answers as its single-item route would, in request order', async () => {
    const [a, b, c, d, e, f] = await Promise.all(
      ['A', 'B', 'C', 'D', 'E', 'F'].map((n) => createDeal(n === 'C' ? tokens.rep2 : tokens.rep, n)),
    );
    const applied = await propose(tokens.agent, a.id, { amount: 111 });
    const stale = await propose(tokens.agent, b.id, { amount: 222 });
    const forbidden = await propose(tokens.agent2, c.id, { amount: 333 });
    const own = await propose(tokens.vp, d.id, { amount: 444 });
    const rejected = await propose(tokens.agent, e.id, { amount: 555 });
    const wrongRevision = await propose(tokens.agent, f.id, { amount: 666 });
    const noReason = await propose(tokens.agent, f.id, { amount: 667 });
    // P2: the record moves on after the proposal; P1: rep2 loses her access before the approval.
    await ok(call('PATCH', `/data/deal/${b.id}`, tokens.rep, { title: 'B2' }, { 'if-match': '"1"' }));
    await ok(call('DELETE', `/permission-sets/${sets.rep2}/assignments/${assignments.rep2}`, tokens.admin), 204);
    const unknown = randomUUID();

    const { results } = await bulk([
      { id: applied, decision: 'approve' },
      { id: stale, decision: 'approve' },
      { id: forbidden, decision: 'approve' },
      { id: own, decision: 'approve' },
      { id: unknown, decision: 'approve' },
      { id: rejected, decision: 'reject', reason: 'not agreed' },
      { id: wrongRevision, decision: 'approve', revision: 2 },
      { id: noReason, decision: 'reject' },
      { id: applied, decision: 'approve' },
    ]);
    expect(results.map((r: Json) => [r.id, r.status, r.state ?? r.code])).toEqual([
      [applied, 200, 'applied'],
      [stale, 200, 'stale'],
      [forbidden, 200, 'forbidden'],
      [own, 403, 'forbidden'],
      [unknown, 404, 'not_found'],
      [rejected, 200, 'rejected'],
      [wrongRevision, 412, 'precondition_failed'],
      [noReason, 400, 'validation_failed'],
      // Named twice: decided again after the others, as a second request would be.
      [applied, 409, 'conflict'],
    ]);
    expect(results[0].outcome).toEqual({ version: 2 });

    // Only the approved, still valid change was written, once, as the rep's agent.
    expect(await ok(call('GET', `/data/deal/${a.id}`, tokens.vp))).toMatchObject({ amount: 111, version: 2 });
    expect(await ok(call('GET', `/data/deal/${b.id}`, tokens.vp))).toMatchObject({ amount: 100, title: 'B2', version: 2 });
    expect(await ok(call('GET', `/data/deal/${c.id}`, tokens.vp))).toMatchObject({ amount: 100, version: 1 });
    expect(await ok(call('GET', `/data/deal/${e.id}`, tokens.vp))).toMatchObject({ amount: 100, version: 1 });
    expect(await outbox('objects', a.id)).toEqual(['objects.record.created', 'objects.record.updated']);
    const update = await db.query(
      `SELECT payload FROM objects.outbox WHERE payload->>'action' = 'objects.record.updated' AND payload->'target'->>'id' = $1`,
      [a.id],
    );
    expect(update.rows[0].payload.actor).toMatchObject({ userId: users.rep, agent: { clientId: AGENT.clientId } });
    expect(await outbox('objects', c.id)).toEqual(['objects.record.created']);

    // One audit event per move and per refusal, as the single-item route writes them.
    expect(await outbox('approvals', applied)).toEqual([
      'approvals.action.requested',
      'approvals.action.approved',
      'approvals.action.applied',
    ]);
    expect(await outbox('approvals', stale)).toEqual([
      'approvals.action.requested',
      'approvals.action.approved',
      'approvals.action.failed',
    ]);
    expect(await outbox('approvals', forbidden)).toEqual([
      'approvals.action.requested',
      'approvals.action.approved',
      'approvals.action.failed',
    ]);
    expect(await outbox('approvals', own)).toEqual(['approvals.action.requested', 'authz.denied']);
    expect(await outbox('approvals', rejected)).toEqual(['approvals.action.requested', 'approvals.action.rejected']);
    expect(await outbox('approvals', wrongRevision)).toEqual(['approvals.action.requested']);
    const states = await db.query(`SELECT id, state FROM approvals.pending_action WHERE id = ANY($1::uuid[])`, [[stale, forbidden, own]]);
    expect(Object.fromEntries(states.rows.map((r: Json) => [r.id, r.state]))).toEqual({
      [stale]: 'stale',
      [forbidden]: 'forbidden',
      [own]: 'pending',
    });
  });

  it('a statement that fails inside the batch (a unique value) rolls the batch back and each item is applied on its own', async () => {
    const [x, y, z] = await Promise.all(['X', 'Y', 'Z'].map((n) => createDeal(tokens.rep, n)));
    const first = await propose(tokens.agent, x.id, { code: 'SAME' });
    const second = await propose(tokens.agent, y.id, { code: 'SAME' });
    const third = await propose(tokens.agent, z.id, { amount: 7 });
    const { results } = await bulk([first, second, third].map((id) => ({ id, decision: 'approve' })));
    expect(results.map((r: Json) => r.state)).toEqual(['applied', 'failed', 'applied']);
    expect(results[1].outcome).toMatchObject({ code: 'conflict' });
    expect(await ok(call('GET', `/data/deal/${x.id}`, tokens.rep))).toMatchObject({ code: 'SAME', version: 2 });
    expect(await ok(call('GET', `/data/deal/${y.id}`, tokens.rep))).toMatchObject({ code: null, version: 1 });
    expect(await ok(call('GET', `/data/deal/${z.id}`, tokens.rep))).toMatchObject({ amount: 7, version: 2 });
    // The rolled-back batch left nothing behind: one update event per applied record, none for the refused one.
    expect(await outbox('objects', x.id)).toEqual(['objects.record.created', 'objects.record.updated']);
    expect(await outbox('objects', y.id)).toEqual(['objects.record.created']);
    expect(await outbox('objects', z.id)).toEqual(['objects.record.created', 'objects.record.updated']);
  });

  it('P3: objects applied a batch but approvals never recorded it — the bulk approval answers the receipts, nothing is written twice', async () => {
    const deals = await Promise.all(['P', 'Q'].map((n) => createDeal(tokens.rep, n)));
    const ids = await Promise.all(deals.map((deal, i) => propose(tokens.agent, deal.id, { amount: 900 + i })));
    const items: RequestOf<typeof ApplyRecordOperations>['items'] = deals.map((deal, i) => ({
      requester: { userId: users.rep, orgId, agent: AGENT },
      operation: 'update',
      object: 'deal',
      recordId: deal.id,
      values: { amount: 900 + i },
      expectedVersion: 1,
      idempotencyKey: `pending-action:${ids[i]}`,
    }));
    // The "crash": objects committed the batch; the actions are still pending in approvals.
    const direct = await t.host.bus.request(ApplyRecordOperations, { items });
    expect(direct.results.map((r) => [r.outcome, r.version])).toEqual([
      ['applied', 2],
      ['applied', 2],
    ]);
    // The same key with other values is not the same operation.
    const other = await t.host.bus.request(ApplyRecordOperations, { items: [{ ...items[0], values: { amount: 1 } }] });
    expect(other.results[0]).toMatchObject({ outcome: 'conflict' });
    const { results } = await bulk(ids.map((id) => ({ id, decision: 'approve' })));
    expect(results.map((r: Json) => [r.state, r.outcome])).toEqual([
      ['applied', { version: 2 }],
      ['applied', { version: 2 }],
    ]);
    for (const [i, deal] of deals.entries()) {
      expect(await ok(call('GET', `/data/deal/${deal.id}`, tokens.rep))).toMatchObject({ amount: 900 + i, version: 2 });
      expect(await outbox('objects', deal.id)).toEqual(['objects.record.created', 'objects.record.updated']);
    }
  });
});
