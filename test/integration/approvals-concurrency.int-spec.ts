import { Client } from 'pg';
import { recordTable } from '../../apps/objects/src/metadata/org-tables';
import { apiClient, type ApiResponse, type Json } from '../support/api';
import { pollUntil } from '../support/poll';
import { startTestHost, type TestHost } from '../support/host';
import { auditCounts, buildApprovalsWorld, recordUpdates, type ApprovalsWorld } from './approvals-world';

const ROUNDS = Number(process.env.APPROVALS_RACE_ROUNDS ?? 6);
const RACERS = ['r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7', 'r8'];

/**
 * The pending-action queue under racing requests, what each reviewer's field access lets them see,
 * and separation of duties through the requester's API key — on real PostgreSQL, over HTTP.
 */
describe('approvals: races, field-filtered diffs and separation of duties through keys', () => {
  let t: TestHost;
  let db: Client;
  let world: ApprovalsWorld;
  let rep: { userId: string; token: string; agent: string; key: string };
  const { call, ok } = apiClient(() => t.host.url);
  const propose = (token: string, body: Json) => call('POST', '/approvals', token, { justification: 'customer asked', ...body });
  const record = (id: string): Promise<Json> => ok(call('GET', `/data/deal/${id}`, world.tokens.vp));

  /**
   * Fires the requests in the given order while the test holds a row lock, each only once the one
   * before is queued behind that lock, then lets go: the order in which they reach the row is
   * chosen, not left to how busy the machine is.
   */
  async function inLockOrder(lockSql: string, params: unknown[], requests: Array<() => Promise<ApiResponse>>): Promise<ApiResponse[]> {
    const locker = new Client({ connectionString: t.db.url });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(lockSql, params);
      const answers: Array<Promise<ApiResponse>> = [];
      const answered: boolean[] = [];
      for (const [k, request] of requests.entries()) {
        answered[k] = false;
        answers.push(request().finally(() => (answered[k] = true)));
        // Every request still out must be queued on the row; one refused early (answered) holds up nothing.
        await pollUntil(
          async () =>
            answered[k] ||
            (
              await db.query<{ n: number }>(
                `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
              )
            ).rows[0].n >= answered.filter((a) => !a).length,
          { what: `request ${k + 1} to wait for the row lock` },
        );
      }
      await locker.query('COMMIT');
      return await Promise.all(answers);
    } finally {
      await locker.end();
    }
  }
  /** Each order forced once, then free races. */
  const schedules = (): Array<'first' | 'second' | 'free'> => ['first', 'second', ...Array.from({ length: ROUNDS }, () => 'free' as const)];

  beforeAll(async () => {
    t = await startTestHost('approvals_race', { CUSTODIAN_APPROVALS_SWEEP_MS: '0' });
    db = new Client({ connectionString: t.db.url });
    await db.connect();
    world = await buildApprovalsWorld(t.host.url, call, ok, {
      vp: 'vp',
      ops: 'ops',
      narrow: 'narrow',
      ...Object.fromEntries(RACERS.map((r) => [r, 'vp' as const])),
    });
    rep = await world.newRequester('rep');
  }, 180_000);

  afterAll(async () => {
    await db?.end();
    await t?.stop();
  });

  it('approve racing cancel: exactly one wins, never both effects', async () => {
    const tally = { approved: 0, cancelled: 0 };
    for (const [i, schedule] of schedules().entries()) {
      const deal = await world.createDeal(rep.token, `Race cancel ${i}`);
      const filed = await ok(
        propose(rep.agent, { kind: 'record.update', object: 'deal', recordId: deal.id, values: { amount: 500 + i } }),
        201,
      );
      const fire = {
        approve: () => call('POST', `/approvals/${filed.id}/approve`, world.tokens.vp, {}),
        cancel: () => call('POST', `/approvals/${filed.id}/cancel`, rep.token, {}),
      };
      const order = schedule === 'second' ? (['cancel', 'approve'] as const) : (['approve', 'cancel'] as const);
      const answers =
        schedule === 'free'
          ? await Promise.all(order.map((what) => fire[what]()))
          : await inLockOrder(
              'SELECT 1 FROM approvals.pending_action WHERE id = $1 FOR UPDATE',
              [filed.id],
              order.map((what) => fire[what]),
            );
      const approve = answers[order.indexOf('approve')];
      const cancel = answers[order.indexOf('cancel')];
      expect([approve.status, cancel.status].sort()).toEqual([200, 409]);
      const events = (await auditCounts(db, [filed.id]))[filed.id];
      const state = (await ok(call('GET', `/approvals/${filed.id}`, world.tokens.vp))).state;
      if (schedule !== 'free') expect(approve.status).toBe(schedule === 'first' ? 200 : 409);
      if (approve.status === 200) {
        tally.approved++;
        expect(approve.body.state).toBe('applied');
        expect(state).toBe('applied');
        expect(await record(deal.id)).toMatchObject({ amount: 500 + i, version: 2 });
        expect(await recordUpdates(db, deal.id)).toBe(1);
        expect(events['approvals.action.cancelled']).toBeUndefined();
      } else {
        tally.cancelled++;
        expect(cancel.body.state).toBe('cancelled');
        expect(state).toBe('cancelled');
        expect(await record(deal.id)).toMatchObject({ amount: 100, version: 1 });
        expect(await recordUpdates(db, deal.id)).toBe(0);
        expect(events['approvals.action.approved']).toBeUndefined();
        expect(events['approvals.action.applied']).toBeUndefined();
      }
    }
    console.log(`approve vs cancel, 2 forced + ${ROUNDS} free rounds: ${JSON.stringify(tally)}`);
  });

  it('apply racing a direct edit of the record: applied then the edit conflicts, or stale — never a lost update', async () => {
    const tally = { applied: 0, stale: 0 };
    for (const [i, schedule] of schedules().entries()) {
      const deal = await world.createDeal(rep.token, `Race edit ${i}`);
      const filed = await ok(
        propose(rep.agent, { kind: 'record.update', object: 'deal', recordId: deal.id, values: { amount: 700 + i } }),
        201,
      );
      const fire = {
        approve: () => call('POST', `/approvals/${filed.id}/approve`, world.tokens.vp, {}),
        edit: () => call('PATCH', `/data/deal/${deal.id}`, rep.token, { title: `edited ${i}` }, { 'if-match': '"1"' }),
      };
      const order = schedule === 'second' ? (['edit', 'approve'] as const) : (['approve', 'edit'] as const);
      // Forced orders hold the record's row, so the apply's write and the edit queue on it in turn.
      const answers =
        schedule === 'free'
          ? await Promise.all(order.map((what) => fire[what]()))
          : await inLockOrder(
              `SELECT 1 FROM ${recordTable(world.orgId, 'deal')} WHERE id = $1 FOR UPDATE`,
              [deal.id],
              order.map((what) => fire[what]),
            );
      const approve = answers[order.indexOf('approve')];
      const edit = answers[order.indexOf('edit')];
      if (schedule !== 'free') expect(approve.body.state).toBe(schedule === 'first' ? 'applied' : 'stale');
      expect(approve.status).toBe(200);
      const after = await record(deal.id);
      if (approve.body.state === 'applied') {
        tally.applied++;
        // The approved change landed first; the edit, made against version 1, must not overwrite it.
        expect(edit.status).toBe(412);
        expect(after).toMatchObject({ amount: 700 + i, title: `Race edit ${i}`, version: 2 });
      } else {
        tally.stale++;
        expect(approve.body.state).toBe('stale');
        expect(edit.status).toBe(200);
        expect(after).toMatchObject({ amount: 100, title: `edited ${i}`, version: 2 });
      }
      expect(await recordUpdates(db, deal.id)).toBe(1);
    }
    console.log(`apply vs direct edit, 2 forced + ${ROUNDS} free rounds: ${JSON.stringify(tally)}`);
  });

  it('eight approvers racing on an action that needs two: one apply, two decisions, six 409s', async () => {
    for (let i = 0; i < Math.max(2, ROUNDS / 2); i++) {
      const deal = await world.createDeal(rep.token, `Race eight ${i}`);
      const filed = await ok(propose(rep.agent, { kind: 'action.run', object: 'deal', recordId: deal.id, action: 'mark_reviewed' }), 201);
      expect(filed.requiredApprovals).toBe(2);
      const answers = await Promise.all(RACERS.map((who) => call('POST', `/approvals/${filed.id}/approve`, world.tokens[who], {})));
      expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 409, 409, 409, 409, 409, 409]);
      expect(
        answers
          .filter((a) => a.status === 200)
          .map((a) => a.body.state)
          .sort(),
      ).toEqual(['applied', 'pending']);
      const detail = await ok(call('GET', `/approvals/${filed.id}`, world.tokens.vp));
      expect(detail.state).toBe('applied');
      expect(detail.decisions).toHaveLength(2);
      expect(new Set(detail.decisions.map((d: Json) => d.approverUserId)).size).toBe(2);
      const rows = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM approvals.pending_action_decision WHERE action_id = $1', [
        filed.id,
      ]);
      expect(rows.rows[0].n).toBe(2);
      expect((await auditCounts(db, [filed.id]))[filed.id]).toEqual({
        'approvals.action.requested': 1,
        'approvals.action.approved': 2,
        'approvals.action.applied': 1,
      });
      expect(await record(deal.id)).toMatchObject({ stage: 'reviewed', version: 2 });
      expect(await recordUpdates(db, deal.id)).toBe(1);
    }
  });

  it('three reviewers see the diff through their own field access; no hidden value is anywhere in what they receive', async () => {
    const secret = { oldTitle: 'Quokka-old-title-5517', newTitle: 'Zebra-new-title-7731', oldMargin: 0.135791, newMargin: 0.975319 };
    const deal = await ok(
      call('POST', '/data/deal', rep.token, { title: secret.oldTitle, amount: 100, stage: 'open', margin: secret.oldMargin }),
      201,
    );
    const filed = await ok(
      propose(rep.agent, {
        kind: 'record.update',
        object: 'deal',
        recordId: deal.id,
        values: { title: secret.newTitle, amount: 424242, margin: secret.newMargin },
      }),
      201,
    );
    const seen = async (who: string) => {
      const res = await call('GET', `/approvals/${filed.id}`, world.tokens[who]);
      expect(res.status).toBe(200);
      const list = await ok(call('GET', `/approvals?waitingForMe=true&limit=200`, world.tokens[who]));
      return { body: res.body, text: JSON.stringify(res.body) + JSON.stringify(list) + JSON.stringify([...res.headers]) };
    };
    const hiddenIn = (text: string, values: Array<string | number>) => values.filter((v) => text.includes(String(v)));

    const all = await seen('vp');
    expect(all.body.diff).toEqual({
      title: { from: secret.oldTitle, to: secret.newTitle },
      amount: { from: 100, to: 424242 },
      margin: { from: secret.oldMargin, to: secret.newMargin },
    });
    expect(all.body.current).toMatchObject({ title: secret.oldTitle, margin: secret.oldMargin });

    const noSensitive = await seen('ops');
    expect(noSensitive.body.diff).toEqual({
      title: { from: secret.oldTitle, to: secret.newTitle },
      amount: { from: 100, to: 424242 },
      margin: { hidden: true },
    });
    expect(noSensitive.body.current).not.toHaveProperty('margin');
    expect(hiddenIn(noSensitive.text, [secret.oldMargin, secret.newMargin])).toEqual([]);

    const oneField = await seen('narrow');
    expect(oneField.body.diff).toEqual({ title: { hidden: true }, amount: { from: 100, to: 424242 }, margin: { hidden: true } });
    expect(oneField.body.current).toMatchObject({ amount: 100 });
    expect(oneField.body.current).not.toHaveProperty('title');
    expect(oneField.body.current).not.toHaveProperty('margin');
    expect(oneField.body.current).not.toHaveProperty('stage');
    expect(hiddenIn(oneField.text, [secret.oldTitle, secret.newTitle, secret.oldMargin, secret.newMargin, 'Quokka', 'Zebra'])).toEqual([]);
    // What they approve is the whole change, not only the part they could see.
    expect(await ok(call('POST', `/approvals/${filed.id}/approve`, world.tokens.narrow, {}))).toMatchObject({ state: 'applied' });
    expect(await record(deal.id)).toMatchObject({ title: secret.newTitle, amount: 424242, margin: secret.newMargin });
  });

  it("separation of duties through an API key: the requester's own key cannot decide her change; another reviewer's key can", async () => {
    const deal = await world.createDeal(rep.token, 'Key SoD');
    const byAgent = await ok(propose(rep.agent, { kind: 'record.update', object: 'deal', recordId: deal.id, values: { amount: 1 } }), 201);
    const byHuman = await ok(propose(rep.token, { kind: 'record.update', object: 'deal', recordId: deal.id, values: { amount: 2 } }), 201);
    // The key is hers (and carries her approve_actions): the refusal is separation of duties, audited.
    for (const id of [byAgent.id, byHuman.id]) {
      const approve = await call('POST', `/approvals/${id}/approve`, rep.key, {});
      expect(approve.status).toBe(403);
      expect(approve.body.details.reason).toBe('self_approval');
      const reject = await call('POST', `/approvals/${id}/reject`, rep.key, { reason: 'mine anyway' });
      expect(reject.status).toBe(403);
      expect(reject.body.details.reason).toBe('self_approval');
    }
    const bulk = await ok(
      call('POST', '/approvals/bulk', rep.key, {
        items: [
          { id: byAgent.id, decision: 'approve' },
          { id: byHuman.id, decision: 'approve' },
        ],
      }),
    );
    expect(bulk.results.map((r: Json) => r.status)).toEqual([403, 403]);
    const counts = await auditCounts(db, [byAgent.id, byHuman.id]);
    expect(counts[byAgent.id]).toEqual({ 'approvals.action.requested': 1, 'authz.denied': 3 });
    expect(counts[byHuman.id]).toEqual({ 'approvals.action.requested': 1, 'authz.denied': 3 });
    for (const id of [byAgent.id, byHuman.id]) expect((await ok(call('GET', `/approvals/${id}`, world.tokens.vp))).state).toBe('pending');
    expect((await record(deal.id)).version).toBe(1);

    // A key is not refused as such: the VP's own key approves, and the decision names the key.
    const vpKey = await ok(call('POST', '/api-keys', world.tokens.vp, { name: 'vp key' }), 201);
    expect(await ok(call('POST', `/approvals/${byAgent.id}/approve`, vpKey.key, {}))).toMatchObject({ state: 'applied' });
    const decision = await db.query<{ credential: Json }>('SELECT credential FROM approvals.pending_action_decision WHERE action_id = $1', [
      byAgent.id,
    ]);
    expect(decision.rows[0].credential).toEqual({ apiKeyId: vpKey.id });
  });
});
