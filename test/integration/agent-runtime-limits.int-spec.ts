import { Client as Pg } from 'pg';
import { createMembers } from '../support/agent-gateway';
import { apiClient, type Json } from '../support/api';
import { startFakeModelServer, type ChatRequest, type FakeModelServer, type Step } from '../support/fake-model-server';
import { login, startTestHost, type TestHost } from '../support/host';
import { pollUntil } from '../support/poll';

const PASSWORD = 'a-long-enough-password';
/** Longer than any turn of this suite may take: a turn still running then is a hang. */
const BOUND_MS = 30_000;

/**
 * The agent runtime's profile limits and the pending-action outcomes other than approval, end to
 * end: the all-in-one host on real PostgreSQL, the real `openai` client against the scripted fake
 * model server over real HTTP. Each limit ends the turn with a notice naming it and leaves the
 * conversation ready for the next message; every model request that happened has its egress
 * record and its audit event. A rejected or expired pending action shows its state, adds a notice
 * and resumes the conversation; the record stays as it was.
 */
describe('agent runtime: limits and pending-action outcomes', () => {
  let t: TestHost;
  let db: Pg;
  let fake: FakeModelServer;
  const { call, ok } = apiClient(() => t.host.url);
  const tokens: Record<string, string> = {};
  const accounts: string[] = [];
  let base = 0;

  /** A script: each step in turn from now on, then a plain answer. */
  const reset = (...list: Step[]): void => {
    base = fake.requests.length;
    fake.script((_req, n) => list[n - base] ?? { text: 'done' });
  };
  /** A model that asks for the same tool call in every answer, from now on. */
  const endless = (usage?: { prompt: number; completion: number }): void => {
    base = fake.requests.length;
    fake.script(() => ({ toolCalls: [{ name: 'list_objects', arguments: '{}' }], ...(usage ? { usage } : {}) }));
  };
  const setting = (name: string, value: unknown): Promise<Json> => ok(call('PUT', `/agent/settings/${name}`, tokens.admin, { value }));
  const profile = async (name: string, limits: Record<string, number>): Promise<string> =>
    (
      await ok(
        call('POST', '/agent/profiles', tokens.admin, {
          name,
          model: 'fake-model',
          systemPrompt: 'Help the sales team.',
          scopes: ['data:read', 'data:write'],
          limits,
        }),
        201,
      )
    ).id;
  const converse = async (profileId: string): Promise<string> =>
    (await ok(call('POST', '/agent/conversations', tokens.west, { profileId }), 201)).id;
  const say = (id: string, content: string): Promise<Json> =>
    ok(call('POST', `/agent/conversations/${id}/messages`, tokens.west, { content }));
  const read = (id: string): Promise<Json> => ok(call('GET', `/agent/conversations/${id}`, tokens.west));
  const egressOf = async (id: string): Promise<Json[]> =>
    (
      await db.query(
        'SELECT outcome, prompt_tokens, completion_tokens FROM agent_gateway.agent_egress WHERE conversation_id = $1 ORDER BY created_at, id',
        [id],
      )
    ).rows;
  /** The runtime's audit events of one conversation, as committed to the gateway's outbox. */
  const requested = async (id: string): Promise<Json[]> =>
    (
      await db.query(
        `SELECT payload FROM agent_gateway.outbox WHERE payload->>'action' = 'agent.model.requested' AND payload->'target'->>'id' = $1 ORDER BY id`,
        [id],
      )
    ).rows.map((r: { payload: Json }) => r.payload);
  /**
   * The conversation once the turn of its (only) user message has ended with a notice. Not "the user
   * message is there and the state is not running": GET reads the conversation row and then its
   * messages in two statements, so a read racing the turn's start can see the state before it
   * (`idle`) with the user message the turn just stored.
   */
  const turnEnded = (id: string): Promise<Json> =>
    pollUntil(
      async () => {
        const c = await read(id);
        return c.state !== 'running' && c.messages.at(-1)?.role === 'notice' ? c : undefined;
      },
      { what: 'the turn to end', timeoutMs: BOUND_MS },
    );
  const account = async (id: string): Promise<Json> => ok(call('GET', `/data/account/${id}`, tokens.west));

  beforeAll(async () => {
    fake = await startFakeModelServer();
    // The approvals sweep expires due pending actions every 100 ms (the expiry test backdates one).
    t = await startTestHost('agent_limits', { CUSTODIAN_APPROVALS_SWEEP_MS: '100' });
    db = new Pg({ connectionString: t.db.url });
    await db.connect();
    tokens.admin = (await login(t.host.url)).accessToken;
    await ok(
      call('POST', '/meta/objects', tokens.admin, {
        name: 'account',
        label: 'Account',
        sharingModel: 'private',
        fields: [
          { name: 'name', type: 'text', required: true, maxLength: 200 },
          { name: 'amount', type: 'number' },
        ],
      }),
      201,
    );
    const rep = await ok(
      call('POST', '/permission-sets', tokens.admin, {
        name: 'Reps',
        objects: { account: { allowRead: true, allowCreate: true, allowEdit: true, allowDelete: true } },
        fields: { account: { '*': 'edit' } },
        integrationCapabilities: ['api_access', 'agent_access', 'mcp_access'],
      }),
      201,
    );
    const manager = await ok(
      call('POST', '/permission-sets', tokens.admin, {
        name: 'Managers',
        objects: { account: { allowRead: true, viewAllRecords: true, allowEdit: true } },
        systemCapabilities: ['approve_actions'],
      }),
      201,
    );
    const members = await createMembers(
      t.host.url,
      tokens.admin,
      [
        ['west', rep.id],
        ['manager', manager.id],
      ],
      PASSWORD,
    );
    Object.assign(tokens, members.tokens);
    for (let i = 0; i < 3; i++)
      accounts.push((await ok(call('POST', '/data/account', tokens.west, { name: `Acme ${i}`, amount: i }), 201)).id);
    await setting('model.base_url', fake.url);
    await setting('model.max_retries', 0);
  }, 180_000);

  afterAll(async () => {
    await db?.end();
    await t?.stop();
    await fake?.close();
  });

  describe('profile limits', () => {
    it('tokens per turn: the completion tokens the model reports add up, each request asks for what is left, and the turn stops past the limit', async () => {
      const id = await converse(await profile('Token-limited', { tokensPerTurn: 100, toolCallsPerTurn: 100, modelCallsPerTurn: 50 }));
      endless({ prompt: 123, completion: 40 });
      const answer = await say(id, 'keep going');
      // 40 + 40 + 40 = 120 ≥ 100 after the third answer: no fourth request.
      const sent = fake.requests.slice(base) as ChatRequest[];
      expect(sent.map((r) => r.max_tokens)).toEqual([100, 60, 20]);
      expect(answer.state).toBe('idle');
      expect(answer.messages.at(-1)).toMatchObject({ role: 'notice', meta: { code: 'limit_reached' } });
      expect(answer.messages.at(-1).content).toBe('Stopped: the agent reached its limit of 100 tokens for this message.');
      expect(answer.messages.filter((m: Json) => m.role === 'assistant')).toHaveLength(3);
      // The third answer's tool call ran; the limit is checked once a round's calls are done.
      expect(answer.messages.filter((m: Json) => m.role === 'tool' && !m.meta.notRun)).toHaveLength(3);
      expect(await egressOf(id)).toEqual(Array(3).fill({ outcome: 'success', prompt_tokens: 123, completion_tokens: 40 }));
      const audited = await requested(id);
      expect(audited.map((e) => [e.outcome, e.details.promptTokens, e.details.completionTokens])).toEqual(
        Array(3).fill(['success', 123, 40]),
      );
      // Not stuck: the next message is a new turn with a fresh budget.
      reset({ text: 'fresh budget' });
      const next = await say(id, 'and now?');
      expect(next.state).toBe('idle');
      expect(next.messages.at(-1).content).toBe('fresh budget');
      expect(fake.requests.at(-1)!.max_tokens).toBe(100);
    });

    it('model calls per turn: a model that keeps calling tools is stopped at the profile’s number of model requests', async () => {
      const id = await converse(await profile('Request-limited', { modelCallsPerTurn: 3, toolCallsPerTurn: 100 }));
      endless();
      const answer = await say(id, 'loop');
      expect(fake.requests.length - base).toBe(3);
      expect(answer.state).toBe('idle');
      expect(answer.messages.at(-1)).toMatchObject({ role: 'notice', meta: { code: 'limit_reached' } });
      expect(answer.messages.at(-1).content).toBe('Stopped: the agent reached its limit of 3 model requests for this message.');
      expect(answer.messages.filter((m: Json) => m.role === 'tool' && !m.meta.notRun)).toHaveLength(3);
      expect((await egressOf(id)).map((e) => e.outcome)).toEqual(['success', 'success', 'success']);
      expect(await requested(id)).toHaveLength(3);
      expect((await read(id)).state).toBe('idle');
    });

    it('wall time: a model that never answers is cut off at the profile’s wall time, not model.timeout_ms; the turn ends failed with a notice', async () => {
      // Only the wall time (1 s) can end this request: model.timeout_ms is 10 minutes.
      await setting('model.timeout_ms', 600_000);
      try {
        const id = await converse(await profile('Wall-limited', { wallTimeMs: 1000 }));
        reset({ hang: true });
        const started = Date.now();
        const posted = call('POST', `/agent/conversations/${id}/messages`, tokens.west, { content: 'hello?' });
        const ended = await turnEnded(id);
        const elapsed = Date.now() - started;
        expect((await posted).status).toBe(200);
        expect(ended.state).toBe('failed');
        const notice = ended.messages.at(-1);
        expect(notice).toMatchObject({ role: 'notice', meta: { code: 'model_timeout' } });
        // Whichever of the turn's timer and the request's own (set to the time left) fires first, the
        // notice names the wall time, not the few ms that were left of it.
        expect(notice.content).toContain('reached its time limit of 1000 ms for this message');
        expect(notice.content).toContain('model.timeout_ms = 600000 ms');
        expect(elapsed).toBeGreaterThanOrEqual(900);
        expect(fake.requests.length - base).toBe(1);
        expect(await egressOf(id)).toEqual([{ outcome: 'model_timeout', prompt_tokens: null, completion_tokens: null }]);
        expect((await requested(id)).map((e) => [e.outcome, e.details.error])).toEqual([['failure', 'model_timeout']]);
        // The next message works again.
        reset({ text: 'awake' });
        expect((await say(id, 'again')).state).toBe('idle');
      } finally {
        await setting('model.timeout_ms', 60_000);
      }
    });

    it('wall time: a slow model that keeps calling tools is stopped within the wall time, every request it answered recorded', async () => {
      await setting('model.timeout_ms', 600_000);
      fake.delay(400);
      try {
        const id = await converse(await profile('Slow-limited', { wallTimeMs: 1000, toolCallsPerTurn: 100, modelCallsPerTurn: 50 }));
        endless();
        const started = Date.now();
        const posted = call('POST', `/agent/conversations/${id}/messages`, tokens.west, { content: 'take your time' });
        const ended = await turnEnded(id);
        expect((await posted).status).toBe(200);
        expect(Date.now() - started).toBeGreaterThanOrEqual(900);
        const notice = ended.messages.at(-1);
        // The deadline falls in a model request (cut: model_timeout, failed) or, on a busy machine,
        // between two (limit_reached, idle); either way a notice about time, never a hang.
        if (notice.meta.code === 'model_timeout') {
          expect(ended.state).toBe('failed');
          expect(notice.content).toContain('reached its time limit of 1000 ms for this message');
        } else {
          expect(notice).toMatchObject({ role: 'notice', meta: { code: 'limit_reached' } });
          expect(notice.content).toBe('Stopped: the agent reached its time limit of 1000 ms for this message.');
          expect(ended.state).toBe('idle');
        }
        const answered = ended.messages.filter((m: Json) => m.role === 'assistant').length;
        // 400 ms an answer within 1 s: at most two answered.
        expect(answered).toBeGreaterThanOrEqual(1);
        expect(answered).toBeLessThanOrEqual(2);
        const egress = await egressOf(id);
        const outcomes = egress.map((e) => e.outcome);
        expect(outcomes.filter((o) => o === 'success')).toHaveLength(answered);
        // The request the deadline cut has its record too, after the answered ones.
        expect(outcomes).toEqual([...Array(answered).fill('success'), ...(notice.meta.code === 'model_timeout' ? ['model_timeout'] : [])]);
        expect(await requested(id)).toHaveLength(egress.length);
      } finally {
        fake.delay(0);
        await setting('model.timeout_ms', 60_000);
      }
    });
  });

  describe('pending actions that are not approved', () => {
    let profileId: string;
    beforeAll(async () => {
      profileId = await profile('Sales copilot', {});
    });

    /** Files an update of `accountId` through the agent; the turn waits for a decision. */
    const fileUpdate = async (accountId: string, amount: number): Promise<{ id: string; pendingActionId: string }> => {
      reset(
        {
          toolCalls: [
            {
              name: 'update_record',
              arguments: JSON.stringify({ object: 'account', id: accountId, values: { amount }, justification: 'bigger order' }),
            },
          ],
        },
        { text: 'I filed the change; a manager must approve it.' },
        { text: 'The change was not made.' },
      );
      const id = await converse(profileId);
      const answer = await say(id, `Set the amount to ${amount}`);
      expect(answer.state).toBe('waiting_approval');
      const tool = answer.messages.find((m: Json) => m.role === 'tool');
      expect(tool).toMatchObject({ pendingState: 'pending', pendingActionId: expect.any(String) });
      return { id, pendingActionId: tool.pendingActionId };
    };
    const resumed = (id: string): Promise<Json> =>
      pollUntil(
        async () => {
          const c = await read(id);
          return c.state === 'idle' && c.messages.at(-1).content === 'The change was not made.' ? c : undefined;
        },
        { what: 'the conversation resumed', timeoutMs: BOUND_MS },
      );

    it.each([
      ['rejected', 'a manager rejects it'],
      ['expired', 'it expires (the approvals sweep)'],
    ])('%s: when %s, the conversation shows it, tells the model and resumes; the record is unchanged', async (state) => {
      const before = await account(accounts[0]!);
      const { id, pendingActionId } = await fileUpdate(accounts[0]!, 999);
      const requests = fake.requests.length;
      if (state === 'rejected') await ok(call('POST', `/approvals/${pendingActionId}/reject`, tokens.manager, { reason: 'not agreed' }));
      else await db.query(`UPDATE approvals.pending_action SET expires_at = now() - interval '1 second' WHERE id = $1`, [pendingActionId]);
      const done = await resumed(id);
      expect(done.messages.find((m: Json) => m.pendingActionId === pendingActionId).pendingState).toBe(state);
      const notice = done.messages.find((m: Json) => m.role === 'notice');
      expect(notice).toMatchObject({ meta: { code: 'pending_action_decided', pendingActionId, state } });
      expect(notice.content).toBe(`Pending action ${pendingActionId} is now ${state}. Tell the user what this means for their request.`);
      // The resumed turn: one more model request, which carried the notice.
      expect(fake.requests.length).toBe(requests + 1);
      expect(fake.requests.at(-1)!.messages.some((m) => m.role === 'system' && m.content === `[Custodian] ${notice.content}`)).toBe(true);
      expect((await egressOf(id)).map((e) => e.outcome)).toEqual(['success', 'success', 'success']);
      expect((await ok(call('GET', `/approvals/${pendingActionId}`, tokens.manager))).state).toBe(state);
      expect(await account(accounts[0]!)).toEqual(before);
    });

    it('two pending actions in one turn: after one is rejected it still waits; once the other expires it resumes', async () => {
      reset(
        {
          toolCalls: [
            {
              name: 'update_record',
              arguments: JSON.stringify({ object: 'account', id: accounts[1], values: { amount: 11 }, justification: 'a' }),
            },
            {
              name: 'update_record',
              arguments: JSON.stringify({ object: 'account', id: accounts[2], values: { amount: 22 }, justification: 'b' }),
            },
          ],
        },
        { text: 'Two changes are waiting for a manager.' },
        { text: 'The change was not made.' },
      );
      const id = await converse(profileId);
      const answer = await say(id, 'Change both');
      expect(answer.state).toBe('waiting_approval');
      const [first, second] = answer.messages.filter((m: Json) => m.pendingActionId).map((m: Json) => m.pendingActionId as string);
      expect(first && second && first !== second).toBe(true);
      const requests = fake.requests.length;
      await ok(call('POST', `/approvals/${first}/reject`, tokens.manager, { reason: 'no' }));
      const one = await pollUntil(
        async () => {
          const c = await read(id);
          return c.messages.some((m: Json) => m.role === 'notice' && m.meta.pendingActionId === first) ? c : undefined;
        },
        { what: 'the rejection shown', timeoutMs: BOUND_MS },
      );
      expect(one.state).toBe('waiting_approval');
      expect(one.messages.find((m: Json) => m.pendingActionId === first).pendingState).toBe('rejected');
      expect(fake.requests.length).toBe(requests);
      await db.query(`UPDATE approvals.pending_action SET expires_at = now() - interval '1 second' WHERE id = $1`, [second]);
      const done = await resumed(id);
      expect(done.messages.find((m: Json) => m.pendingActionId === second).pendingState).toBe('expired');
      expect(done.messages.filter((m: Json) => m.meta?.code === 'pending_action_decided').map((m: Json) => m.meta.state)).toEqual([
        'rejected',
        'expired',
      ]);
      expect(fake.requests.length).toBe(requests + 1);
      expect((await account(accounts[1]!)).amount).toBe(1);
      expect((await account(accounts[2]!)).amount).toBe(2);
    });
  });
});
