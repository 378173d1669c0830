import { ApplyRecordOperation } from '@custodian/contracts';
import type { Client } from 'pg';
import { apiClient, type Json } from '../support/api';
import { login, startTestHostWithDb, type TestHost } from '../support/host';
import { pollUntil } from '../support/poll';

const PASSWORD = 'a-long-enough-password';

/**
 * The pending-action queue end to end on real PostgreSQL: an agent's proposal waits, reviewers see
 * the diff through their own field access, separation of duties holds, and apply re-checks the
 * requester's permission (P1), the record's version (P2), happens once under racing approvers (P3),
 * refuses self-approval also through an agent (P4) and expired or repeated decisions (P5).
 */
describe('approvals: the pending-action queue', () => {
  let t: TestHost;
  let db: Client;
  const { call, ok } = apiClient(() => t.host.url);
  const tokens: Record<string, string> = {};
  const users: Record<string, string> = {};
  let agent: string;
  let orgId: string;
  let repSetAssignment: string;
  let repSetId: string;

  /** A delegated agent token (RFC 8693) for `subject`, narrowed to `scope`. */
  const delegate = async (subject: string, scope: string, clientId: string, name: string): Promise<string> =>
    (
      await ok(
        call('POST', '/auth/token-exchange', undefined, {
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: subject,
          subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
          scope,
          client_id: clientId,
          agent_name: name,
        }),
      )
    ).access_token;
  const createDeal = async (title: string): Promise<Json> =>
    ok(call('POST', '/data/deal', tokens.rep, { title, amount: 100, margin: 0.1 }), 201);
  const propose = (token: string, body: Json) => call('POST', '/approvals', token, { justification: 'customer asked', ...body });
  const auditActions = async (id: string): Promise<string[]> =>
    (
      await db.query(`SELECT payload->>'action' AS action FROM approvals.outbox WHERE payload->'target'->>'id' = $1 ORDER BY id`, [id])
    ).rows.map((r: { action: string }) => r.action);

  beforeAll(async () => {
    ({
      t,
      pg: db,
      admin: tokens.admin,
      orgId,
    } = await startTestHostWithDb('approvals_queue', { CUSTODIAN_APPROVALS_SWEEP_MS: '50', CUSTODIAN_APPROVALS_APPLY_RETRY_MS: '60000' }));
    await ok(
      call('POST', '/meta/objects', tokens.admin, {
        name: 'deal',
        label: 'Deal',
        fields: [
          { name: 'title', type: 'text' },
          { name: 'amount', type: 'number' },
          { name: 'margin', type: 'number', sensitive: true },
        ],
      }),
      201,
    );
    const rep = await ok(
      call('POST', '/permission-sets', tokens.admin, {
        name: 'Reps',
        objects: { deal: { allowRead: true, allowCreate: true, allowEdit: true, allowDelete: true } },
        fields: { deal: { '*': 'edit', margin: 'edit' } },
        // The rep is an approver too: separation of duties, not a missing capability, must stop her.
        systemCapabilities: ['approve_actions'],
        integrationCapabilities: ['api_access', 'agent_access'],
      }),
      201,
    );
    repSetId = rep.id;
    const approverWithMargin = await ok(
      call('POST', '/permission-sets', tokens.admin, {
        name: 'VP',
        objects: { deal: { viewAllRecords: true } },
        fields: { deal: { '*': 'read', margin: 'read' } },
        systemCapabilities: ['approve_actions'],
      }),
      201,
    );
    const approverNoMargin = await ok(
      call('POST', '/permission-sets', tokens.admin, {
        name: 'Ops reviewer',
        objects: { deal: { viewAllRecords: true } },
        fields: { deal: { '*': 'read' } },
        systemCapabilities: ['approve_actions'],
      }),
      201,
    );
    const approverBlind = await ok(
      call('POST', '/permission-sets', tokens.admin, { name: 'Blind approver', systemCapabilities: ['approve_actions'] }),
      201,
    );
    const plan: Array<[string, string[]]> = [
      ['rep', [rep.id]],
      ['vp', [approverWithMargin.id]],
      ['ops', [approverNoMargin.id]],
      ['blind', [approverBlind.id]],
      ['vp2', [approverWithMargin.id]],
    ];
    for (const [name, sets] of plan) {
      const u = await ok(call('POST', '/users', tokens.admin, { email: `${name}@test.local`, displayName: name, password: PASSWORD }), 201);
      users[name] = u.id;
      for (const set of sets) {
        const a = await ok(call('POST', `/permission-sets/${set}/assignments`, tokens.admin, { userId: users[name] }), 201);
        if (name === 'rep') repSetAssignment = a.id;
      }
      tokens[name] = (await login(t.host.url, { email: `${name}@test.local`, password: PASSWORD })).accessToken;
    }
    agent = await delegate(tokens.rep, 'data:read data:write', 'sales-copilot', 'Sales copilot');
  }, 90_000);

  afterAll(async () => {
    await db?.end();
    await t?.stop();
  });

  it("an agent cannot write directly; its update is filed with the diff, the VP sees it all, a reviewer without the margin sees 'changed, hidden'", async () => {
    const deal = await createDeal('Acme');
    expect((await call('PATCH', `/data/deal/${deal.id}`, agent, { amount: 5 }, { 'if-match': '"1"' })).status).toBe(403);
    const filed = await propose(agent, { kind: 'record.update', object: 'deal', recordId: deal.id, values: { amount: 250, margin: 0.4 } });
    expect(filed.status).toBe(201);
    expect(filed.body).toMatchObject({ state: 'pending', revision: 1, requiredApprovals: 1, policy: null });
    expect(filed.body.diff).toEqual({ amount: { from: 100, to: 250 }, margin: { from: 0.1, to: 0.4 } });

    const vp = await ok(call('GET', `/approvals/${filed.body.id}`, tokens.vp));
    expect(vp.diff.margin).toEqual({ from: 0.1, to: 0.4 });
    expect(vp.current).toMatchObject({ title: 'Acme', amount: 100, margin: 0.1 });
    expect(vp.requester).toEqual({ userId: users.rep, agent: { clientId: 'sales-copilot', name: 'Sales copilot' } });

    const ops = await ok(call('GET', `/approvals/${filed.body.id}`, tokens.ops));
    expect(ops.diff).toEqual({ amount: { from: 100, to: 250 }, margin: { hidden: true } });
    expect(ops.current).not.toHaveProperty('margin');
    expect(JSON.stringify(ops)).not.toContain('0.4');

    // An approver who cannot read the record does not learn the action exists.
    expect((await call('GET', `/approvals/${filed.body.id}`, tokens.blind)).status).toBe(404);
    expect((await call('POST', `/approvals/${filed.body.id}/approve`, tokens.blind, {})).status).toBe(404);
    // The record is untouched while the action waits.
    expect((await ok(call('GET', `/data/deal/${deal.id}`, tokens.rep))).amount).toBe(100);
  });

  it('separation of duties: the requester can decide neither directly nor through their agent (P4)', async () => {
    const deal = await createDeal('Self');
    const filed = await ok(propose(agent, { kind: 'record.update', object: 'deal', recordId: deal.id, values: { amount: 1 } }), 201);
    const self = await call('POST', `/approvals/${filed.id}/approve`, tokens.rep, {});
    expect(self.status).toBe(403);
    expect(self.body.details.reason).toBe('self_approval');
    expect((await call('POST', `/approvals/${filed.id}/approve`, agent, {})).status).toBe(403);
    const byVpAgent = await delegate(tokens.admin, 'data:read data:write', 'admin-bot', 'Admin bot');
    const agentReview = await call('POST', `/approvals/${filed.id}/approve`, byVpAgent, {});
    expect(agentReview.status).toBe(403);
    expect((await ok(call('GET', `/approvals/${filed.id}`, tokens.vp))).state).toBe('pending');
    const denials = await db.query(
      `SELECT count(*)::int AS n FROM approvals.outbox WHERE payload->>'action' = 'authz.denied' AND payload->'target'->>'id' = $1`,
      [filed.id],
    );
    expect(denials.rows[0].n).toBe(3);
  });

  it('approving names the revision seen (If-Match); the approved values are applied under the requester, audited once per step', async () => {
    const deal = await createDeal('Apply');
    const filed = await ok(propose(agent, { kind: 'record.update', object: 'deal', recordId: deal.id, values: { amount: 777 } }), 201);
    expect((await call('POST', `/approvals/${filed.id}/approve`, tokens.vp, {}, { 'if-match': '"2"' })).status).toBe(412);
    expect((await call('POST', `/approvals/${filed.id}/approve`, tokens.vp, {}, { 'if-match': 'W/"1"' })).status).toBe(400);
    const approved = await ok(call('POST', `/approvals/${filed.id}/approve`, tokens.vp, { comment: 'ok' }, { 'if-match': '"1"' }));
    expect(approved).toMatchObject({ state: 'applied', recordId: deal.id, outcome: { version: 2 } });
    const record = await ok(call('GET', `/data/deal/${deal.id}`, tokens.rep));
    expect(record).toMatchObject({ amount: 777, version: 2 });
    await pollUntil(async () => (await auditActions(filed.id)).length === 3, { what: 'audit events' });
    expect(await auditActions(filed.id)).toEqual(['approvals.action.requested', 'approvals.action.approved', 'approvals.action.applied']);
    // A decided action cannot be decided again (P5).
    expect((await call('POST', `/approvals/${filed.id}/approve`, tokens.vp2, {})).status).toBe(409);
    expect((await call('POST', `/approvals/${filed.id}/reject`, tokens.vp2, { reason: 'late' })).status).toBe(409);
  });

  it('a record changed after the proposal makes the apply stale, never re-applied (P2)', async () => {
    const deal = await createDeal('Stale');
    const filed = await ok(propose(agent, { kind: 'record.update', object: 'deal', recordId: deal.id, values: { amount: 1 } }), 201);
    await ok(call('PATCH', `/data/deal/${deal.id}`, tokens.rep, { title: 'Stale, edited' }, { 'if-match': '"1"' }));
    const res = await ok(call('POST', `/approvals/${filed.id}/approve`, tokens.vp, {}));
    expect(res.state).toBe('stale');
    const record = await ok(call('GET', `/data/deal/${deal.id}`, tokens.rep));
    expect(record).toMatchObject({ amount: 100, title: 'Stale, edited', version: 2 });
  });

  it('racing approvers: exactly one effect, the loser gets 409 (P3)', async () => {
    const deal = await createDeal('Race');
    const filed = await ok(propose(agent, { kind: 'record.update', object: 'deal', recordId: deal.id, values: { amount: 42 } }), 201);
    const answers = await Promise.all(
      ['vp', 'vp2', 'ops'].map((who) => call('POST', `/approvals/${filed.id}/approve`, tokens[who], {}, { 'if-match': '"1"' })),
    );
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([200, 409, 409]);
    expect(answers.find((a) => a.status === 200)!.body.state).toBe('applied');
    const record = await ok(call('GET', `/data/deal/${deal.id}`, tokens.rep));
    expect(record).toMatchObject({ amount: 42, version: 2 });
    const updates = await db.query(
      `SELECT count(*)::int AS n FROM objects.outbox WHERE payload->>'action' = 'objects.record.updated' AND payload->'target'->>'id' = $1`,
      [deal.id],
    );
    expect(updates.rows[0].n).toBe(1);
  });

  it('reject needs a reason; cancel is the requester’s only; an invalid change is refused before it is queued', async () => {
    const deal = await createDeal('Reject');
    const a = await ok(propose(agent, { kind: 'record.update', object: 'deal', recordId: deal.id, values: { amount: 2 } }), 201);
    expect((await call('POST', `/approvals/${a.id}/reject`, tokens.vp, {})).status).toBe(400);
    expect(await ok(call('POST', `/approvals/${a.id}/reject`, tokens.vp, { reason: 'no' }))).toMatchObject({ state: 'rejected' });
    const b = await ok(propose(tokens.rep, { kind: 'record.delete', object: 'deal', recordId: deal.id }), 201);
    expect((await call('POST', `/approvals/${b.id}/cancel`, tokens.vp, {})).status).toBe(404);
    expect(await ok(call('POST', `/approvals/${b.id}/cancel`, tokens.rep, { reason: 'changed my mind' }))).toMatchObject({
      state: 'cancelled',
    });
    const before = (await db.query('SELECT count(*)::int AS n FROM approvals.pending_action')).rows[0].n;
    const bad = await propose(agent, { kind: 'record.update', object: 'deal', recordId: deal.id, values: { nope: 1 } });
    expect(bad.status).toBe(400);
    const missing = await propose(agent, { kind: 'record.update', object: 'deal', values: { amount: 1 } });
    expect(missing.status).toBe(400);
    const readOnly = await delegate(tokens.rep, 'data:read', 'reader', 'Reader');
    const beyondScope = await propose(readOnly, {
      kind: 'record.update',
      object: 'deal',
      recordId: deal.id,
      values: { amount: 1 },
    });
    expect(beyondScope.status).toBe(403);
    expect((await db.query('SELECT count(*)::int AS n FROM approvals.pending_action')).rows[0].n).toBe(before);
  });

  it('an expired action cannot be approved and ends expired (P5)', async () => {
    const deal = await createDeal('Expire');
    const filed = await ok(propose(agent, { kind: 'record.update', object: 'deal', recordId: deal.id, values: { amount: 3 } }), 201);
    await db.query(`UPDATE approvals.pending_action SET expires_at = now() - interval '1 second' WHERE id = $1`, [filed.id]);
    const res = await call('POST', `/approvals/${filed.id}/approve`, tokens.vp, {});
    expect(res.status).toBe(409);
    expect((await ok(call('GET', `/approvals/${filed.id}`, tokens.vp))).state).toBe('expired');
    // The sweep expires the others on its own.
    const other = await ok(propose(agent, { kind: 'record.update', object: 'deal', recordId: deal.id, values: { amount: 4 } }), 201);
    await db.query(`UPDATE approvals.pending_action SET expires_at = now() - interval '1 second' WHERE id = $1`, [other.id]);
    await pollUntil(async () => (await ok(call('GET', `/approvals/${other.id}`, tokens.vp))).state === 'expired', { what: 'sweep expiry' });
  });

  it('the database refuses a skipped or reverted state and never deletes an action', async () => {
    const deal = await createDeal('Trigger');
    const filed = await ok(propose(agent, { kind: 'record.delete', object: 'deal', recordId: deal.id }), 201);
    await expect(db.query(`UPDATE approvals.pending_action SET state = 'applied' WHERE id = $1`, [filed.id])).rejects.toThrow(
      /not a transition/,
    );
    await expect(db.query(`DELETE FROM approvals.pending_action WHERE id = $1`, [filed.id])).rejects.toThrow(/never deleted/);
    await ok(call('POST', `/approvals/${filed.id}/reject`, tokens.vp, { reason: 'keep it' }));
    await expect(db.query(`UPDATE approvals.pending_action SET state = 'pending' WHERE id = $1`, [filed.id])).rejects.toThrow(/final/);
  });

  it('a crash between objects’ commit and approvals’ commit applies exactly once (the retry answers the first result)', async () => {
    const deal = await createDeal('Crash');
    const filed = await ok(propose(agent, { kind: 'record.update', object: 'deal', recordId: deal.id, values: { amount: 9 } }), 201);
    // Approved committed, then the process "died": objects applied, approvals never recorded it.
    await db.query(`UPDATE approvals.pending_action SET state = 'approved' WHERE id = $1`, [filed.id]);
    const first = await t.host.bus.request(ApplyRecordOperation, {
      requester: {
        userId: users.rep,
        orgId,
        agent: { clientId: 'sales-copilot', name: 'Sales copilot', scopes: ['data:read', 'data:write'] },
      },
      operation: 'update',
      object: 'deal',
      recordId: deal.id,
      values: { amount: 9 },
      expectedVersion: 1,
      idempotencyKey: `pending-action:${filed.id}`,
    });
    expect(first.outcome).toBe('applied');
    // The sweep finds the orphan once it is old enough and retries it.
    await db.query(`UPDATE approvals.pending_action SET updated_at = now() - interval '1 hour' WHERE id = $1`, [filed.id]);
    const done = await pollUntil(
      async () => {
        const r = await ok(call('GET', `/approvals/${filed.id}`, tokens.vp));
        return r.state !== 'approved' ? r : undefined;
      },
      { what: 'the sweep to apply the orphan' },
    );
    expect(done.state).toBe('applied');
    expect(await ok(call('GET', `/data/deal/${deal.id}`, tokens.rep))).toMatchObject({ amount: 9, version: 2 });
    const updates = await db.query(
      `SELECT count(*)::int AS n FROM objects.outbox WHERE payload->>'action' = 'objects.record.updated' AND payload->'target'->>'id' = $1`,
      [deal.id],
    );
    expect(updates.rows[0].n).toBe(1);
  });

  it('lists: waiting for me, mine, filters, and cursor pages without holes', async () => {
    const deal = await createDeal('List');
    const ids: string[] = [];
    for (let i = 0; i < 7; i++)
      ids.push((await ok(propose(agent, { kind: 'record.update', object: 'deal', recordId: deal.id, values: { amount: i } }), 201)).id);
    const waiting = await ok(call('GET', '/approvals?waitingForMe=true&limit=200', tokens.vp2));
    for (const id of ids) expect(waiting.items.map((i: Json) => i.id)).toContain(id);
    const repView = await ok(call('GET', '/approvals?waitingForMe=true', tokens.rep));
    expect(repView.items).toEqual([]);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Json = await ok(
        call('GET', `/approvals?agent=sales-copilot&status=pending&limit=3${cursor ? `&cursor=${cursor}` : ''}`, tokens.vp),
      );
      seen.push(...page.items.map((i: Json) => i.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of ids) expect(seen).toContain(id);
    expect((await call('GET', '/approvals?status=bogus', tokens.vp)).status).toBe(400);
    expect((await call('GET', '/approvals?limit=100000', tokens.vp)).status).toBe(400);
    expect((await call('GET', '/approvals/not-a-uuid', tokens.vp)).status).toBe(404);
  });

  it('bulk decides each item on its own, with per-item results', async () => {
    const deal = await createDeal('Bulk');
    const a = await ok(propose(agent, { kind: 'record.update', object: 'deal', recordId: deal.id, values: { amount: 11 } }), 201);
    const b = await ok(propose(agent, { kind: 'record.update', object: 'deal', recordId: deal.id, values: { amount: 12 } }), 201);
    const res = await ok(
      call('POST', '/approvals/bulk', tokens.vp2, {
        items: [
          { id: a.id, decision: 'approve' },
          { id: b.id, decision: 'reject', reason: 'duplicate' },
          { id: a.id, decision: 'approve' },
          { id: '00000000-0000-4000-8000-000000000000', decision: 'approve' },
        ],
      }),
    );
    expect(res.results.map((r: Json) => [r.status, r.state ?? r.code])).toEqual([
      [200, 'applied'],
      [200, 'rejected'],
      [409, 'conflict'],
      [404, 'not_found'],
    ]);
  });

  it('a person’s change that an approval policy catches is filed, not written: 202, and it lands only after approval', async () => {
    const deal = await createDeal('Gated');
    await ok(
      call('POST', '/bundles/apply', tokens.admin, {
        bundle: {
          apiVersion: 'custodian.dev/v1',
          kind: 'Bundle',
          name: 'gates',
          approvalPolicies: [{ name: 'Deal deletes and big edits', object: 'deal', operations: ['delete', 'update'] }],
        },
      }),
    );
    const del = await call('DELETE', `/data/deal/${deal.id}`, tokens.rep, undefined, { 'custodian-justification': 'duplicate deal' });
    expect(del.status).toBe(202);
    expect(del.headers.get('location')).toBe(`/api/v1/approvals/${del.body.pendingAction.id}`);
    expect(del.body.pendingAction).toMatchObject({ state: 'pending', policy: 'Deal deletes and big edits' });
    expect((await call('GET', `/data/deal/${deal.id}`, tokens.rep)).status).toBe(200);
    const stale = await call('PATCH', `/data/deal/${deal.id}`, tokens.rep, { amount: 1 }, { 'if-match': '"7"' });
    expect(stale.status).toBe(412);
    const detail = await ok(call('GET', `/approvals/${del.body.pendingAction.id}`, tokens.vp));
    expect(detail).toMatchObject({ kind: 'record.delete', justification: 'duplicate deal', requester: { userId: users.rep } });
    expect(await ok(call('POST', `/approvals/${del.body.pendingAction.id}/approve`, tokens.vp, {}))).toMatchObject({ state: 'applied' });
    expect((await call('GET', `/data/deal/${deal.id}`, tokens.rep)).status).toBe(404);
    // Creates are not caught by that policy: they are written at once.
    expect((await call('POST', '/data/deal', tokens.rep, { title: 'free', amount: 1 })).status).toBe(201);
    // Removing the policy takes effect at once (the objects cache drops on the change broadcast).
    await ok(
      call('POST', '/bundles/apply', tokens.admin, {
        bundle: {
          apiVersion: 'custodian.dev/v1',
          kind: 'Bundle',
          name: 'gates',
          approvalPolicies: [{ name: 'Deal deletes and big edits', object: 'deal', operations: ['action'] }],
        },
      }),
    );
    const other = await createDeal('Ungated');
    expect((await call('DELETE', `/data/deal/${other.id}`, tokens.rep)).status).toBe(204);
  });

  it('action.run: needs actions:execute; reviewers approve the action’s values, a changed action is stale', async () => {
    const bundle = (set: Json) => ({
      bundle: {
        apiVersion: 'custodian.dev/v1',
        kind: 'Bundle',
        name: 'deal-actions',
        actions: [{ name: 'zero_out', object: 'deal', label: 'Zero out', kind: 'update', set }],
      },
    });
    await ok(call('POST', '/bundles/apply', tokens.admin, bundle({ amount: 0 })));
    const deal = await createDeal('Action');
    const noScope = await propose(agent, { kind: 'record.update', object: 'deal', recordId: deal.id, values: { amount: 0 } });
    expect(noScope.status).toBe(201); // a plain update is data:write
    const refused = await propose(agent, { kind: 'action.run', object: 'deal', recordId: deal.id, action: 'zero_out' });
    expect(refused.status).toBe(403);
    const runner = await delegate(tokens.rep, 'data:read actions:execute', 'runner', 'Runner');
    expect((await propose(runner, { kind: 'action.run', object: 'deal', recordId: deal.id, action: 'nope' })).status).toBe(404);
    expect(
      (
        await propose(runner, {
          kind: 'action.run',
          object: 'deal',
          recordId: deal.id,
          action: 'zero_out',
          values: { amount: 9 },
        })
      ).status,
    ).toBe(400);
    const filed = await ok(propose(runner, { kind: 'action.run', object: 'deal', recordId: deal.id, action: 'zero_out' }), 201);
    expect(filed.diff).toEqual({ amount: { from: 100, to: 0 } });
    expect(await ok(call('GET', `/approvals/${filed.id}`, tokens.vp))).toMatchObject({ kind: 'action.run', action: 'zero_out' });
    expect(await ok(call('POST', `/approvals/${filed.id}/approve`, tokens.vp, {}))).toMatchObject({ state: 'applied' });
    expect((await ok(call('GET', `/data/deal/${deal.id}`, tokens.rep))).amount).toBe(0);

    const other = await createDeal('Action changed');
    const second = await ok(propose(runner, { kind: 'action.run', object: 'deal', recordId: other.id, action: 'zero_out' }), 201);
    await ok(call('POST', '/bundles/apply', tokens.admin, bundle({ amount: 5 })));
    const res = await ok(call('POST', `/approvals/${second.id}/approve`, tokens.vp, {}));
    expect(res).toMatchObject({ state: 'stale', outcome: { code: 'action_changed' } });
    expect((await ok(call('GET', `/data/deal/${other.id}`, tokens.rep))).amount).toBe(100);
  });

  it('metadata.change: the definition diff for reviewers with manage_metadata, applied with the definition’s version', async () => {
    const metaSet = await ok(
      call('POST', '/permission-sets', tokens.admin, {
        name: 'Metadata stewards',
        systemCapabilities: ['manage_metadata', 'approve_actions'],
      }),
      201,
    );
    const steward = await ok(
      call('POST', '/users', tokens.admin, { email: 'steward@test.local', displayName: 'steward', password: PASSWORD }),
      201,
    );
    await ok(call('POST', `/permission-sets/${metaSet.id}/assignments`, tokens.admin, { userId: steward.userId ?? steward.id }), 201);
    tokens.steward = (await login(t.host.url, { email: 'steward@test.local', password: PASSWORD })).accessToken;
    const current = await ok(call('GET', '/meta/objects/deal', tokens.admin));
    const definition = (extra: Json[]) => ({
      name: 'deal',
      label: 'Deal',
      fields: [
        { name: 'title', type: 'text' },
        { name: 'amount', type: 'number' },
        { name: 'margin', type: 'number', sensitive: true },
        ...extra,
      ],
    });
    // An agent keeps manage_metadata only under metadata:write, and then may only propose: direct structural writes refuse it.
    const adminAgent = (scope: string): Promise<string> => delegate(tokens.admin, scope, 'modeller', 'Modeller');
    const modeller = await adminAgent('data:read metadata:write');
    const caps = (await ok(call('GET', '/auth/me', modeller))).capabilities;
    expect(caps).toEqual(expect.arrayContaining(['manage_metadata', 'view_all_data']));
    expect(caps).not.toEqual(expect.arrayContaining(['manage_users']));
    expect(caps).not.toContain('modify_all_data');
    expect((await ok(call('GET', '/auth/me', await adminAgent('data:read')))).capabilities).not.toContain('manage_metadata');
    const direct = await call('PUT', '/meta/objects/deal', modeller, definition([{ name: 'sneaky', type: 'text' }]));
    expect([direct.status, direct.body.details?.reason]).toEqual([403, 'propose_through_approvals']);
    const viaBundle = await call('POST', '/bundles/apply', modeller, {
      bundle: { apiVersion: 'custodian.dev/v1', kind: 'Bundle', name: 'x' },
    });
    expect([viaBundle.status, viaBundle.body.details?.reason]).toEqual([403, 'propose_through_approvals']);
    const byAgent = await ok(
      propose(modeller, { kind: 'metadata.change', object: 'deal', values: definition([{ name: 'note', type: 'text' }]) }),
      201,
    );
    expect(await ok(call('POST', `/approvals/${byAgent.id}/reject`, tokens.steward, { reason: 'not now' }))).toMatchObject({
      state: 'rejected',
    });
    // The rep (no manage_metadata) and her agent cannot propose it.
    expect((await propose(agent, { kind: 'metadata.change', object: 'deal', values: definition([]) })).status).toBe(403);
    expect((await propose(tokens.admin, { kind: 'metadata.change', object: 'deal', values: { name: 'deal' } })).status).toBe(400);
    const a = await ok(
      propose(tokens.admin, { kind: 'metadata.change', object: 'deal', values: definition([{ name: 'stage', type: 'text' }]) }),
      201,
    );
    expect(a.diff).toEqual({
      fieldsAdded: [expect.objectContaining({ name: 'stage', type: 'text' })],
      fieldsRemoved: [],
      fieldsChanged: [],
      properties: {},
    });
    const b = await ok(
      propose(tokens.admin, { kind: 'metadata.change', object: 'deal', values: definition([{ name: 'region', type: 'text' }]) }),
      201,
    );
    // A holder of manage_metadata without approve_actions still finds it in their inbox.
    const architectSet = await ok(
      call('POST', '/permission-sets', tokens.admin, { name: 'Architects', systemCapabilities: ['manage_metadata'] }),
      201,
    );
    const architect = await ok(
      call('POST', '/users', tokens.admin, { email: 'architect@test.local', displayName: 'architect', password: PASSWORD }),
      201,
    );
    await ok(
      call('POST', `/permission-sets/${architectSet.id}/assignments`, tokens.admin, { userId: architect.userId ?? architect.id }),
      201,
    );
    const architectToken = (await login(t.host.url, { email: 'architect@test.local', password: PASSWORD })).accessToken;
    const inbox = await ok(call('GET', '/approvals?waitingForMe=true&limit=200', architectToken));
    expect(inbox.items.map((i: Json) => i.id)).toEqual(expect.arrayContaining([a.id, b.id]));
    expect(inbox.items.every((i: Json) => i.kind === 'metadata.change')).toBe(true);
    // Nothing changed yet; the VP (approve_actions but no manage_metadata) cannot review it.
    expect((await ok(call('GET', '/meta/objects/deal', tokens.admin))).version).toBe(current.version);
    expect((await call('GET', `/approvals/${a.id}`, tokens.vp)).status).toBe(404);
    expect(await ok(call('POST', `/approvals/${a.id}/approve`, tokens.steward, {}))).toMatchObject({ state: 'applied' });
    const after = await ok(call('GET', '/meta/objects/deal', tokens.admin));
    expect(after.version).toBe(current.version + 1);
    expect(after.fields.map((f: Json) => f.name)).toContain('stage');
    // The second proposal was computed on the old version: stale, never applied over the first.
    expect(await ok(call('POST', `/approvals/${b.id}/approve`, tokens.steward, {}))).toMatchObject({ state: 'stale' });
    expect((await ok(call('GET', '/meta/objects/deal', tokens.admin))).fields.map((f: Json) => f.name)).not.toContain('region');
  });

  it('P1: a requester who lost the permission after approval gets forbidden, audited', async () => {
    const deal = await createDeal('Lost');
    const filed = await ok(propose(agent, { kind: 'record.update', object: 'deal', recordId: deal.id, values: { amount: 5 } }), 201);
    await ok(call('DELETE', `/permission-sets/${repSetId}/assignments/${repSetAssignment}`, tokens.admin), 204);
    const res = await ok(call('POST', `/approvals/${filed.id}/approve`, tokens.vp, {}));
    expect(res.state).toBe('forbidden');
    expect((await ok(call('GET', `/data/deal/${deal.id}`, tokens.vp))).amount).toBe(100);
    await pollUntil(async () => (await auditActions(filed.id)).includes('approvals.action.failed'), { what: 'the failed event' });
  });
});
