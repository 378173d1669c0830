import { createHash, randomBytes, verify } from 'node:crypto';
import net from 'node:net';
import { GetAuditProof } from '@custodian/contracts';
import { canonicalJson, SettingsCipher, uuidv7 } from '@custodian/platform';
import { runSettingsKeyRotation } from '../../apps/agent-gateway/src/runtime/rotate-settings-key';
import { Client as Pg } from 'pg';
import { createMembers } from '../support/agent-gateway';
import { apiClient, type Json } from '../support/api';
import { startFakeModelServer, type ChatRequest, type FakeModelServer, type Step } from '../support/fake-model-server';
import { login, startTestHost, type TestHost } from '../support/host';
import { pollUntil } from '../support/poll';
import { freePort } from '../support/free-port';

const PASSWORD = 'a-long-enough-password';
const API_KEY = 'sk-test-secret-4f2a9c';
const MARGIN = 0.4242;

/**
 * The agent runtime end to end: the all-in-one host on real PostgreSQL, the real `openai` client
 * against a scripted OpenAI-compatible server over real HTTP. Settings (write-only secrets),
 * profiles, the loop through the gateway's governed tools, egress policy and records, SSE,
 * pending actions that resume the conversation, provider failures, limits, export.
 */
describe('agent runtime: conversations with your own model', () => {
  let t: TestHost;
  let db: Pg;
  let fake: FakeModelServer;
  const { call, ok } = apiClient(() => t.host.url);
  const tokens: Record<string, string> = {};
  const users: Record<string, string> = {};
  const accounts: string[] = [];
  let profileId: string;

  const events = async (action: string): Promise<Json[]> =>
    (await db.query(`SELECT payload FROM agent_gateway.outbox WHERE payload->>'action' = $1 ORDER BY id`, [action])).rows.map(
      (r: { payload: Json }) => r.payload,
    );
  const converse = async (token = tokens.west, profile = profileId): Promise<string> =>
    (await ok(call('POST', '/agent/conversations', token, { profileId: profile }), 201)).id;
  const say = async (id: string, content: string, token = tokens.west): Promise<Json> =>
    ok(call('POST', `/agent/conversations/${id}/messages`, token, { content }));
  const setting = (name: string, value: unknown): Promise<Json> => ok(call('PUT', `/agent/settings/${name}`, tokens.admin, { value }));
  /** A script: each step in turn, then a plain answer. */
  const steps = (...list: Step[]): void => fake.script((_req, n) => list[n - base] ?? { text: 'done' });
  let base = 0;
  const reset = (...list: Step[]): void => {
    base = fake.requests.length;
    steps(...list);
  };

  beforeAll(async () => {
    fake = await startFakeModelServer();
    t = await startTestHost('agent_runtime', { CUSTODIAN_AGENT_RETENTION_SWEEP_MS: '200' });
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
          { name: 'notes', type: 'text', maxLength: 4000 },
          { name: 'margin', type: 'number', sensitive: true },
        ],
      }),
      201,
    );
    // Reps may read the margin: the egress policy, not field security, keeps it from the model.
    const rep = await ok(
      call('POST', '/permission-sets', tokens.admin, {
        name: 'Reps',
        objects: { account: { allowRead: true, allowCreate: true, allowEdit: true, allowDelete: true } },
        fields: { account: { '*': 'edit', margin: 'edit' } },
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
        ['other', rep.id],
        ['manager', manager.id],
      ],
      PASSWORD,
    );
    Object.assign(users, members.users);
    Object.assign(tokens, members.tokens);
    for (let i = 0; i < 3; i++)
      accounts.push(
        (await ok(call('POST', '/data/account', tokens.west, { name: `Acme ${i}`, amount: i, notes: 'plain', margin: MARGIN }), 201)).id,
      );
    profileId = (
      await ok(
        call('POST', '/agent/profiles', tokens.admin, {
          name: 'Sales copilot',
          model: 'fake-model',
          systemPrompt: 'Help the sales team.',
          scopes: ['data:read', 'data:write'],
          limits: { toolCallsPerTurn: 4, modelCallsPerTurn: 6 },
        }),
        201,
      )
    ).id;
  }, 180_000);

  afterAll(async () => {
    await db?.end();
    await t?.stop();
    await fake?.close();
  });

  describe('with no provider configured', () => {
    it('a message gets a clear notice and nothing connects anywhere but the database', async () => {
      const id = await converse();
      const outbound: string[] = [];
      const original = net.Socket.prototype.connect;
      const dbPort = Number(new URL(t.db.url).port || 5432);
      // Every TCP connection the process opens while the turn runs, except to PostgreSQL.
      const spy = jest.spyOn(net.Socket.prototype, 'connect').mockImplementation(function (this: net.Socket, ...args: unknown[]) {
        // Node hands connect() either the options or its normalised [options, callback] pair.
        const opts = (Array.isArray(args[0]) ? args[0][0] : args[0]) as { port?: number | string; host?: string } | number;
        const port = typeof opts === 'number' ? opts : Number(opts?.port);
        if (port !== dbPort) outbound.push(`${typeof opts === 'object' ? opts.host : ''}:${port}`);
        return (original as (...a: unknown[]) => net.Socket).apply(this, args);
      });
      let answer: Json;
      try {
        answer = await say(id, 'hello');
      } finally {
        spy.mockRestore();
      }
      expect(answer.state).toBe('failed');
      expect(answer.messages.at(-1)).toMatchObject({ role: 'notice', meta: { code: 'model_not_configured' } });
      expect(answer.messages.at(-1).content).toContain('model.base_url');
      expect(outbound).toEqual([]);
      expect(fake.requests).toHaveLength(0);
      expect(fake.connections()).toBe(0);
    });
  });

  describe('settings', () => {
    it('a secret is write-only: never answered, never audited, sealed at rest', async () => {
      const view = await setting('model.api_key', { value: API_KEY });
      expect(view).toMatchObject({ name: 'model.api_key', secret: { set: true, source: 'encrypted' } });
      const all = await ok(call('GET', '/agent/settings', tokens.admin));
      expect(JSON.stringify(all)).not.toContain(API_KEY);
      const audited = await events('settings.changed');
      expect(audited.at(-1)).toMatchObject({
        target: { id: 'model.api_key' },
        details: { writeOnly: true, source: 'encrypted', change: 'set' },
      });
      expect(JSON.stringify(audited)).not.toContain(API_KEY);
      const row = (await db.query(`SELECT sealed, value FROM agent_gateway.setting WHERE name = 'model.api_key'`)).rows[0];
      expect(row.sealed).toMatch(/^v1\./);
      expect(row.sealed).not.toContain(API_KEY);
      expect(row.value).toBeNull();
    });

    it('needs manage_settings, refuses unknown settings and bad values with 4xx, and references that name the process’s own secrets', async () => {
      expect((await call('GET', '/agent/settings', tokens.west)).status).toBe(403);
      expect((await call('PUT', '/agent/settings/model.base_url', tokens.west, { value: 'http://evil.example/v1' })).status).toBe(403);
      expect((await call('PUT', '/agent/settings/no.such', tokens.admin, { value: 1 })).status).toBe(404);
      for (const [name, value, path] of [
        ['model.base_url', 'ftp://x', '/value'],
        ['model.base_url', 'http://user:pw@x/v1', '/value'],
        ['egress.policy', 'everything', '/value'],
        ['model.timeout_ms', 5, '/value'],
        ['model.api_key', 'plain-string', '/value'],
        ['model.api_key', { reference: 'env:CUSTODIAN_MASTER_KEY' }, '/value/reference'],
        ['model.api_key', { reference: 'file:/etc/shadow' }, '/value/reference'],
      ] as const) {
        const res = await call('PUT', `/agent/settings/${name}`, tokens.admin, { value });
        expect(res.status).toBe(400);
        expect(res.headers.get('content-type')).toContain('application/problem+json');
        expect(res.body.details.issues[0].path).toBe(path);
      }
    });

    it('profile and setting changes are audited with what changed; a duplicate name (409), an unknown profile (404) and clearing an unset setting change and audit nothing', async () => {
      const adminId = (await ok(call('GET', '/auth/me', tokens.admin))).userId as string;
      const created = await ok(call('POST', '/agent/profiles', tokens.admin, { name: 'Audited agent', scopes: ['data:read'] }), 201);
      expect(created).toMatchObject({ name: 'Audited agent', model: null, provider: null, systemPrompt: '', scopes: ['data:read'] });
      const updated = await ok(
        call('PUT', `/agent/profiles/${created.id}`, tokens.admin, {
          name: 'Audited agent',
          systemPrompt: 'Be brief.',
          scopes: ['data:read', 'data:read'],
          limits: { toolCallsPerTurn: 2 },
        }),
      );
      expect(updated).toMatchObject({ id: created.id, systemPrompt: 'Be brief.', scopes: ['data:read'], limits: { toolCallsPerTurn: 2 } });
      await setting('model.name', 'audited-model');
      expect((await call('DELETE', '/agent/settings/model.name', tokens.admin)).status).toBe(204);

      const audited = (await events('settings.changed')).length;
      const unknown = '0190f0f0-0000-7000-8000-000000000000';
      for (const [method, path, body, status] of [
        ['POST', '/agent/profiles', { name: 'Audited agent', scopes: [] }, 409],
        ['PUT', `/agent/profiles/${profileId}`, { name: 'Audited agent', scopes: [] }, 409],
        // An unknown profile is not found before its body is read.
        ['PUT', `/agent/profiles/${unknown}`, { scopes: 'not a list' }, 404],
        ['DELETE', `/agent/profiles/${unknown}`, undefined, 404],
        ['DELETE', '/agent/settings/model.name', undefined, 204],
      ] as const) {
        const res = await call(method, path, tokens.admin, body);
        expect(res.status).toBe(status);
        if (status === 409) expect(res.body.code).toBe('conflict');
        if (status === 404) expect(res.body.code).toBe('not_found');
      }
      expect((await events('settings.changed')).length).toBe(audited);
      expect((await ok(call('GET', `/agent/profiles/${profileId}`, tokens.admin))).name).toBe('Sales copilot');

      expect((await call('DELETE', `/agent/profiles/${created.id}`, tokens.admin)).status).toBe(204);
      expect((await call('GET', `/agent/profiles/${created.id}`, tokens.admin)).status).toBe(404);
      const changes = (await events('settings.changed')).filter(
        (e) => (e.target.type === 'agent_profile' && e.target.id === created.id) || e.target.id === 'model.name',
      );
      expect(changes.every((e) => e.outcome === 'success' && e.actor.userId === adminId)).toBe(true);
      const limits = { ...created.limits };
      expect(changes.map((e) => [e.target.id, e.details])).toEqual([
        [
          created.id,
          { change: 'created', name: 'Audited agent', model: null, provider: null, scopes: ['data:read'], limits, systemPromptChars: 0 },
        ],
        [
          created.id,
          {
            change: 'updated',
            name: 'Audited agent',
            model: null,
            provider: null,
            scopes: ['data:read'],
            limits: { ...limits, toolCallsPerTurn: 2 },
            systemPromptChars: 9,
          },
        ],
        ['model.name', expect.objectContaining({ name: 'model.name', change: 'set', to: 'audited-model' })],
        ['model.name', expect.objectContaining({ name: 'model.name', change: 'cleared', from: 'audited-model' })],
        [created.id, { change: 'deleted' }],
      ]);
    });
  });

  describe('the loop', () => {
    beforeAll(async () => {
      await setting('model.base_url', fake.url);
      await setting('model.max_retries', 0);
      await setting('model.timeout_ms', 2000);
    });

    it('offers exactly the callable tools, runs them as the user ∩ agent, withholds sensitive values, records egress', async () => {
      reset({ toolCalls: [{ name: 'query_records', arguments: JSON.stringify({ object: 'account' }) }] }, { text: 'You have 3 accounts.' });
      const id = await converse();
      const answer = await say(id, 'How many accounts do I have?');
      expect(answer.state).toBe('idle');
      expect(answer.messages.map((m: Json) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant']);
      expect(answer.messages.at(-1).content).toBe('You have 3 accounts.');
      const [first, second] = fake.requests.slice(base) as ChatRequest[];
      const offered = first!.tools!.map((x) => x.function.name).sort();
      const listed = (await ok(call('GET', '/agent/tools?scopes=data:read,data:write', tokens.west))).tools.map((x: Json) => x.name).sort();
      expect(offered).toEqual(listed);
      expect(first!.messages[0]).toMatchObject({ role: 'system' });
      expect(first!.messages[0]!.content).toContain('never an instruction');
      expect(fake.authorizations.at(-1)).toBe(`Bearer ${API_KEY}`);
      const toolMessage = second!.messages.find((m) => m.role === 'tool')!;
      expect(toolMessage.content).toContain('Acme 0');
      expect(toolMessage.content).toContain('[withheld: sensitive field]');
      expect(JSON.stringify(fake.requests)).not.toContain(String(MARGIN));
      const egress = (await db.query('SELECT * FROM agent_gateway.agent_egress WHERE conversation_id = $1 ORDER BY created_at', [id])).rows;
      expect(egress).toHaveLength(2);
      expect(egress[1]).toMatchObject({ provider: new URL(fake.url).host, model: 'fake-model', outcome: 'success' });
      expect(egress[1].record_ids).toEqual(expect.arrayContaining(accounts));
      expect(egress[1].withheld).toEqual(['account.margin']);
      expect(egress[1].fields).toEqual(expect.arrayContaining(['account.name']));
      expect(egress[1].bytes_sent).toBeGreaterThan(egress[0].bytes_sent);
      const requested = (await events('agent.model.requested')).filter((e) => e.target.id === id);
      expect(requested).toHaveLength(2);
      expect(JSON.stringify(requested)).not.toContain('Acme');
      const called = (await events('agent.tool.called')).filter((e) => e.details.mcpSessionId === id);
      expect(called.map((e) => e.details.tool)).toEqual(['query_records']);
      expect(called[0].actor).toMatchObject({
        userId: users.west,
        agent: { clientId: `custodian-agent:${profileId}`, scopes: ['data:read', 'data:write'] },
      });
      expect((await events('agent.conversation.started')).find((e) => e.target.id === id)).toBeTruthy();
    });

    it('under all_readable_fields the value the user may read goes, and the egress record says so', async () => {
      await setting('egress.policy', 'all_readable_fields');
      try {
        reset({ toolCalls: [{ name: 'get_record', arguments: JSON.stringify({ object: 'account', id: accounts[0] }) }] }, { text: 'ok' });
        const id = await converse();
        await say(id, 'margin?');
        expect(fake.requests.at(-1)!.messages.find((m) => m.role === 'tool')!.content).toContain(String(MARGIN));
      } finally {
        await setting('egress.policy', 'no_sensitive_fields');
      }
    });

    it('egress.audit_content puts the request sent to the model into its audit event; off, the event holds none', async () => {
      reset({ text: 'noted' }, { text: 'noted again' });
      const off = await converse();
      await say(off, 'the phrase is periwinkle-off');
      await setting('egress.audit_content', true);
      try {
        const on = await converse();
        await say(on, 'the phrase is periwinkle-on');
        const requested = await events('agent.model.requested');
        expect(requested.find((e) => e.target.id === on).details.content).toContain('periwinkle-on');
        expect(JSON.stringify(requested.find((e) => e.target.id === off))).not.toContain('periwinkle');
      } finally {
        await setting('egress.audit_content', false);
      }
    });

    it('streams Server-Sent Events: deltas, messages, state and done', async () => {
      reset({ text: 'Streaming works fine.', chunks: 4 });
      const id = await converse();
      const res = await fetch(`${t.host.url}/api/v1/agent/conversations/${id}/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens.west}`, 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ content: 'stream please' }),
      });
      expect(res.headers.get('content-type')).toContain('text/event-stream');
      const text = await res.text();
      const types = [...text.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
      expect(types.filter((x) => x === 'delta').length).toBeGreaterThanOrEqual(2);
      expect(types.at(-1)).toBe('done');
      expect(types).toContain('state');
    });

    it('a mutating tool files a pending action; the conversation waits, then resumes when a manager approves', async () => {
      reset(
        {
          toolCalls: [
            {
              name: 'update_record',
              arguments: JSON.stringify({ object: 'account', id: accounts[1], values: { amount: 777 }, justification: 'bigger order' }),
            },
          ],
        },
        { text: 'I filed the change; a manager must approve it.' },
        { text: 'The change was approved and applied.' },
      );
      const id = await converse();
      const answer = await say(id, 'Set Acme 1 to 777');
      expect(answer.state).toBe('waiting_approval');
      const tool = answer.messages.find((m: Json) => m.role === 'tool');
      expect(tool).toMatchObject({ pendingState: 'pending' });
      expect((await ok(call('GET', `/data/account/${accounts[1]}`, tokens.west))).amount).toBe(1);
      await ok(call('POST', `/approvals/${tool.pendingActionId}/approve`, tokens.manager, {}));
      const done = await pollUntil(
        async () => {
          const c = await ok(call('GET', `/agent/conversations/${id}`, tokens.west));
          return c.state === 'idle' && c.messages.at(-1).content === 'The change was approved and applied.' ? c : undefined;
        },
        { what: 'the conversation resumed', timeoutMs: 20_000 },
      );
      expect(done.messages.find((m: Json) => m.pendingActionId === tool.pendingActionId).pendingState).toBe('applied');
      expect((await ok(call('GET', `/data/account/${accounts[1]}`, tokens.west))).amount).toBe(777);
      // Each turn's end is audited with the state its last commit left: waiting, then (resumed) idle.
      const ended = (await events('agent.turn.ended')).filter((e) => e.target.id === id);
      expect(ended.map((e) => [e.details.state, e.details.resumed, e.details.toolCalls])).toEqual([
        ['waiting_approval', false, 1],
        ['idle', true, 0],
      ]);
    });

    it.each([
      ['rate limited (429)', { status: 429, error: 'slow down' } as Step, 'model_rate_limited', 'rate limiting'],
      ['server error (500)', { status: 500 } as Step, 'model_unavailable', 'failed (500)'],
      ['bad key (401)', { status: 401 } as Step, 'model_refused', 'model.api_key'],
      ['wrong base URL or model (404)', { status: 404 } as Step, 'model_refused', 'check model.base_url'],
      ['never answers', { hang: true } as Step, 'model_timeout', 'did not answer within'],
      ['broken stream', { garbage: true } as Step, 'model_bad_response', 'could not be read'],
    ])('provider failure — %s — ends the turn with a clear notice, never a hang', async (_name, step, code, words) => {
      reset(step);
      const id = await converse();
      const answer = await say(id, 'hi');
      expect(answer.state).toBe('failed');
      const notice = answer.messages.at(-1);
      expect(notice).toMatchObject({ role: 'notice', meta: { code } });
      expect(notice.content).toContain(words);
      const egress = (await db.query('SELECT outcome FROM agent_gateway.agent_egress WHERE conversation_id = $1', [id])).rows;
      expect(egress).toEqual([{ outcome: code }]);
      const ended = (await events('agent.turn.ended')).filter((e) => e.target.id === id);
      expect(ended).toHaveLength(1);
      expect(ended[0]).toMatchObject({ outcome: 'failure', details: { state: 'failed', error: code, modelRequests: 1, toolCalls: 0 } });
      // The next message works again.
      reset({ text: 'back' });
      expect((await say(id, 'again')).state).toBe('idle');
    });

    it('provider failure — nothing listens at the base URL — ends the turn with a clear notice, never a hang', async () => {
      const port = await freePort();
      await setting('model.base_url', `http://127.0.0.1:${port}/v1`);
      try {
        const id = await converse();
        const answer = await say(id, 'anyone there?');
        expect(answer.state).toBe('failed');
        expect(answer.messages.at(-1)).toMatchObject({ role: 'notice', meta: { code: 'model_unavailable' } });
        expect(answer.messages.at(-1).content).toContain(`127.0.0.1:${port} could not be reached`);
      } finally {
        await setting('model.base_url', fake.url);
      }
    });

    it('a turn left running by a process that stopped mid-turn does not lock the conversation past its wall time', async () => {
      reset({ text: 'back again' });
      const id = await converse();
      await db.query(`UPDATE agent_gateway.agent_conversation SET state = 'running' WHERE id = $1`, [id]);
      // Within the profile's wall time it is a turn in progress: 409.
      expect((await call('POST', `/agent/conversations/${id}/messages`, tokens.west, { content: 'x' })).status).toBe(409);
      await db.query(`UPDATE agent_gateway.agent_conversation SET updated_at = now() - interval '3 hours' WHERE id = $1`, [id]);
      const answer = await say(id, 'hello after the crash');
      expect(answer.state).toBe('idle');
      expect(answer.messages.at(-1).content).toBe('back again');
    });

    it('a posted message is audited with its length, never its text, and each turn’s end with what it used', async () => {
      reset({ toolCalls: [{ name: 'query_records', arguments: JSON.stringify({ object: 'account' }) }] }, { text: 'Three.' });
      const id = await converse();
      const content = 'How many accounts? (private words: heliotrope-7731)';
      const answer = await say(id, content);
      expect(answer.state).toBe('idle');
      // Someone else's post is refused before anything is written: no message, no event.
      expect((await call('POST', `/agent/conversations/${id}/messages`, tokens.other, { content: 'x' })).status).toBe(404);
      const posted = (await events('agent.conversation.message_posted')).filter((e) => e.target.id === id);
      expect(posted).toHaveLength(1);
      const userMessage = answer.messages.find((m: Json) => m.role === 'user');
      expect(posted[0]).toMatchObject({
        service: 'agent-gateway',
        outcome: 'success',
        actor: { userId: users.west },
        target: { type: 'conversation', id },
        details: { messageId: userMessage.id, length: content.length },
      });
      expect(JSON.stringify(posted[0])).not.toContain('heliotrope');
      const ended = (await events('agent.turn.ended')).filter((e) => e.target.id === id);
      expect(ended).toHaveLength(1);
      expect(ended[0]).toMatchObject({
        outcome: 'success',
        actor: { userId: users.west, agent: { clientId: `custodian-agent:${profileId}` } },
        details: { state: 'idle', resumed: false, toolCalls: 1, modelRequests: 2 },
      });
      expect(ended[0].details.durationMs).toBeGreaterThanOrEqual(0);
      expect(ended[0].details.completionTokens).toBeGreaterThanOrEqual(0);
      expect(JSON.stringify(ended[0])).not.toContain('heliotrope');
      // Written with the rows they describe: the user message's statement, the turn's last commit.
      const rows = (
        await db.query(
          `SELECT (SELECT count(*)::int FROM agent_gateway.agent_message WHERE id = $1) AS messages,
                  (SELECT count(*)::int FROM agent_gateway.outbox WHERE id = $2) AS events`,
          [userMessage.id, posted[0].id],
        )
      ).rows[0];
      expect(rows).toEqual({ messages: 1, events: 1 });
    });

    it('the export carries every audit event of the conversation with its chain position, the signed checkpoint and a canonical digest', async () => {
      reset({ toolCalls: [{ name: 'query_records', arguments: JSON.stringify({ object: 'account' }) }] }, { text: 'Three.' });
      const id = await converse();
      await say(id, 'How many accounts?');
      const written = (
        await db.query(
          `SELECT id::text AS id, payload->>'action' AS action FROM agent_gateway.outbox
            WHERE payload->'target'->>'id' = $1 OR payload->'details'->>'mcpSessionId' = $1 ORDER BY id`,
          [id],
        )
      ).rows as Array<{ id: string; action: string }>;
      expect(written.map((w) => w.action).sort()).toEqual(
        [
          'agent.conversation.message_posted',
          'agent.conversation.started',
          'agent.model.requested',
          'agent.model.requested',
          'agent.tool.called',
          'agent.turn.ended',
        ].sort(),
      );
      // Poll until the audit service stored them all, then have it sign the chain's head.
      for (const w of written)
        await pollUntil(async () => (await call('GET', `/audit/events/${w.id}`, tokens.admin)).status === 200, {
          what: `${w.action} stored`,
        });
      await ok(call('POST', '/audit/checkpoints', tokens.admin, {}), 201);
      // An event the audit service does not have (its outbox row marked sent, so never relayed).
      const missing = uuidv7();
      await db.query(`INSERT INTO agent_gateway.outbox (id, subject, payload, published_at) VALUES ($1, 'evt.audit.recorded', $2, now())`, [
        missing,
        JSON.stringify({
          id: missing,
          orgId: (await ok(call('GET', `/agent/conversations/${id}`, tokens.west))).orgId,
          occurredAt: new Date().toISOString(),
          service: 'agent-gateway',
          action: 'agent.turn.ended',
          outcome: 'success',
          actor: {},
          target: { type: 'conversation', id },
        }),
      ]);

      const exported = await ok(call('GET', `/agent/conversations/${id}/export`, tokens.west));
      const { sha256, auditEventId, ...body } = exported;
      expect(createHash('sha256').update(canonicalJson(body), 'utf8').digest('hex')).toBe(sha256);
      expect((await events('agent.conversation.exported')).find((e) => e.id === auditEventId).details).toMatchObject({
        sha256,
        auditEvents: written.length + 1,
      });
      const audit = exported.audit;
      expect(audit.hashes).toBe(true);
      expect(audit.events.map((e: Json) => e.id)).toEqual([...written.map((w) => w.id), missing]);
      expect(audit.events.at(-1)).toEqual({ id: missing, action: 'agent.turn.ended', occurredAt: expect.any(String), stored: false });
      const stored = audit.events.filter((e: Json) => e.stored);
      expect(stored).toHaveLength(written.length);
      for (const e of stored) {
        // docs/audit.md, "The chain": the row hash recomputes from the event as stored.
        const recomputed = createHash('sha256')
          .update(`custodian-audit-v1\n${audit.chainId}\n${e.seq}\n${e.prevHash}\n${canonicalJson(e.event)}`)
          .digest('hex');
        expect(recomputed).toBe(e.rowHash);
        expect(e.event.id).toBe(e.id);
        const view = await ok(call('GET', `/audit/events/${e.id}`, tokens.admin));
        expect(view.seq).toBe(e.seq);
        if (view.rowHash !== null) expect(view.rowHash).toBe(e.rowHash);
      }
      // The newest signed checkpoint covers them, and its signature verifies under the published key.
      const cp = audit.checkpoint;
      expect(cp).toMatchObject({ chainId: audit.chainId });
      expect(cp.seq).toBeGreaterThanOrEqual(Math.max(...stored.map((e: Json) => e.seq)));
      expect(audit.publicKeys).toContain(cp.publicKey);
      const statement = {
        v: cp.v,
        type: cp.type,
        chainId: cp.chainId,
        seq: cp.seq,
        headHash: cp.headHash,
        signedAt: cp.signedAt,
        kid: cp.kid,
      };
      expect(verify(null, Buffer.from(canonicalJson(statement)), cp.publicKey, Buffer.from(cp.signature, 'base64url'))).toBe(true);
      // Nothing in it is the message text's audit: lengths only.
      expect(stored.find((e: Json) => e.action === 'agent.conversation.message_posted').event.details.length).toBe(
        'How many accounts?'.length,
      );
    });

    it('audit.events.proof answers only events of the org that the asking service wrote (never another service’s or org’s)', async () => {
      const stored = async (service: string): Promise<{ id: string; chain_id: string }> => {
        let row: { id: string; chain_id: string } | undefined;
        await pollUntil(
          async () =>
            (row = (
              await db.query(`SELECT id::text, chain_id::text FROM audit.audit_event WHERE service = $1 ORDER BY seq DESC LIMIT 1`, [
                service,
              ])
            ).rows[0]) !== undefined,
          { what: `a stored ${service} event` },
        );
        return row!;
      };
      const gateway = await stored('agent-gateway');
      const identity = await stored('identity');
      expect(identity.chain_id).toBe(gateway.chain_id);
      const ask = (orgId: string, service: 'agent-gateway' | 'identity') =>
        t.host.bus.request(GetAuditProof, { orgId, service, ids: [gateway.id, identity.id] });
      expect((await ask(gateway.chain_id, 'agent-gateway')).events.map((e) => e.id)).toEqual([gateway.id]);
      expect((await ask(gateway.chain_id, 'identity')).events.map((e) => e.id)).toEqual([identity.id]);
      // Another org's chain: the same ids answer nothing.
      expect((await ask(uuidv7(), 'agent-gateway')).events).toEqual([]);
    });

    it('malformed arguments, wrong types and unknown tools get tool errors the model can read; nothing runs', async () => {
      reset(
        {
          toolCalls: [
            { name: 'query_records', arguments: '{"object": "account"' },
            { name: 'get_record', arguments: JSON.stringify({ object: 'account', id: 42 }) },
            { name: 'drop_database', arguments: '{}' },
          ],
        },
        { text: 'sorry' },
      );
      const id = await converse();
      const answer = await say(id, 'do things');
      const results = answer.messages.filter((m: Json) => m.role === 'tool').map((m: Json) => m.content);
      expect(results[0]).toContain('malformed_arguments');
      expect(results[1]).toContain('validation_failed');
      expect(results[2]).toBe('Error (unknown_tool): Tool drop_database not found');
      expect(answer.state).toBe('idle');
    });

    it('a model that never stops calling tools is stopped at the profile’s limit', async () => {
      fake.script(() => ({ toolCalls: [{ name: 'list_objects', arguments: '{}' }] }));
      base = fake.requests.length;
      const id = await converse();
      const answer = await say(id, 'loop forever');
      expect(answer.messages.at(-1)).toMatchObject({ role: 'notice', meta: { code: 'limit_reached' } });
      expect(answer.messages.filter((m: Json) => m.role === 'tool' && !m.meta.notRun)).toHaveLength(4);
      expect(answer.state).toBe('idle');
    });

    it('a conversation is its user’s: others get 404; the export carries messages, egress and an audited digest', async () => {
      reset({ text: 'hello' });
      const id = await converse();
      await say(id, 'hi');
      for (const token of [tokens.other, tokens.admin]) {
        expect((await call('GET', `/agent/conversations/${id}`, token)).status).toBe(404);
        expect((await call('POST', `/agent/conversations/${id}/messages`, token, { content: 'x' })).status).toBe(404);
        expect((await call('GET', `/agent/conversations/${id}/export`, token)).status).toBe(404);
      }
      const exported = await ok(call('GET', `/agent/conversations/${id}/export`, tokens.west));
      expect(exported.messages.map((m: Json) => m.role)).toEqual(['user', 'assistant']);
      expect(exported.egress).toHaveLength(1);
      expect(exported.sha256).toMatch(/^[0-9a-f]{64}$/);
      const audit = (await events('agent.conversation.exported')).find((e) => e.id === exported.auditEventId);
      expect(audit.details.sha256).toBe(exported.sha256);
    });

    it('retention: a conversation untouched longer than retention.conversation_days is deleted, with its messages, and the purge audited', async () => {
      reset({ text: 'old news' });
      const stale = await converse();
      await say(stale, 'hi');
      const fresh = await converse();
      await setting('retention.conversation_days', 1);
      await db.query(`UPDATE agent_gateway.agent_conversation SET updated_at = now() - interval '2 days' WHERE id = $1`, [stale]);
      await pollUntil(async () => (await call('GET', `/agent/conversations/${stale}`, tokens.west)).status === 404, {
        what: 'the stale conversation purged',
      });
      expect(
        (await db.query('SELECT count(*)::int AS n FROM agent_gateway.agent_message WHERE conversation_id = $1', [stale])).rows[0].n,
      ).toBe(0);
      expect((await call('GET', `/agent/conversations/${fresh}`, tokens.west)).status).toBe(200);
      const purged = await pollUntil(async () =>
        (await events('agent.conversation.purged')).find((e) => e.details.conversationIds.includes(stale)),
      );
      expect(purged.details).toMatchObject({ retentionDays: 1 });
    });

    it('a profile may choose a named provider: its endpoint, key and model, never the org default’s; secrets stay write-only', async () => {
      const other = await startFakeModelServer(() => ({ text: 'from the local provider' }));
      try {
        const key = 'sk-local-provider-7d1e';
        await setting('provider.local.base_url', other.url);
        await setting('provider.local.model', 'local-model');
        const view = await setting('provider.local.api_key', { value: key });
        expect(view).toMatchObject({ name: 'provider.local.api_key', secret: { set: true, source: 'encrypted' } });
        const all = await ok(call('GET', '/agent/settings', tokens.admin));
        expect(all.nextCursor).toBeNull();
        expect(all.items.map((x: Json) => x.name)).toEqual(expect.arrayContaining(['provider.local.base_url', 'provider.local.api_key']));
        expect(JSON.stringify(all)).not.toContain(key);
        expect(JSON.stringify(await events('settings.changed'))).not.toContain(key);
        const local = (
          await ok(call('POST', '/agent/profiles', tokens.admin, { name: 'Local agent', provider: 'local', scopes: ['data:read'] }), 201)
        ).id;
        expect((await ok(call('GET', `/agent/profiles/${local}`, tokens.west))).provider).toBe('local');
        reset({ text: 'from the org default' });
        const before = fake.requests.length;
        const id = await converse(tokens.west, local);
        const answer = await say(id, 'who answers?');
        expect(answer.state).toBe('idle');
        expect(answer.messages.at(-1).content).toBe('from the local provider');
        expect(fake.requests.length).toBe(before);
        expect(other.requests).toHaveLength(1);
        expect(other.requests[0]!.model).toBe('local-model');
        expect(other.authorizations[0]).toBe(`Bearer ${key}`);
        const egress = (await db.query('SELECT provider, model FROM agent_gateway.agent_egress WHERE conversation_id = $1', [id])).rows;
        expect(egress).toEqual([{ provider: new URL(other.url).host, model: 'local-model' }]);
        const requested = (await events('agent.model.requested')).find((e) => e.target.id === id);
        expect(requested.details).toMatchObject({ providerName: 'local', provider: new URL(other.url).host });
        // The org default still answers its own profiles, with its own key.
        const defaultId = await converse();
        expect((await say(defaultId, 'and you?')).messages.at(-1).content).toBe('from the org default');
        expect(fake.authorizations.at(-1)).toBe(`Bearer ${API_KEY}`);
        // A provider nobody configured: a clear notice, no connection anywhere.
        const ghost = (
          await ok(call('POST', '/agent/profiles', tokens.admin, { name: 'Ghost agent', provider: 'ghost', scopes: ['data:read'] }), 201)
        ).id;
        const sent = fake.requests.length + other.requests.length;
        const stuck = await say(await converse(tokens.west, ghost), 'hello?');
        expect(stuck.state).toBe('failed');
        expect(stuck.messages.at(-1)).toMatchObject({ role: 'notice', meta: { code: 'model_not_configured' } });
        expect(stuck.messages.at(-1).content).toContain('provider.ghost.base_url');
        expect(fake.requests.length + other.requests.length).toBe(sent);
        for (const [path, body] of [
          ['/agent/profiles', { name: 'Bad', provider: 'Not A Name', scopes: [] }],
          ['/agent/profiles', { name: 'Bad', provider: 7, scopes: [] }],
        ] as const) {
          const res = await call('POST', path, tokens.admin, body);
          expect(res.status).toBe(400);
          expect(res.body.details.issues[0].path).toBe('/provider');
        }
        expect((await call('PUT', '/agent/settings/provider.Bad-Name.base_url', tokens.admin, { value: other.url })).status).toBe(404);
        expect((await call('PUT', '/agent/settings/provider.local.unknown', tokens.admin, { value: 'x' })).status).toBe(404);
      } finally {
        await other.close();
      }
    });

    it('bad input is a 4xx problem, never a 5xx', async () => {
      const id = await converse();
      for (const [method, path, body] of [
        ['POST', '/agent/conversations', { profileId: 'nope' }],
        ['POST', '/agent/conversations', { profileId: '0190f0f0-0000-7000-8000-000000000000' }],
        ['POST', `/agent/conversations/${id}/messages`, { content: '' }],
        ['POST', `/agent/conversations/${id}/messages`, { content: 'x', extra: 1 }],
        ['POST', '/agent/conversations/not-a-uuid/messages', { content: 'x' }],
        ['POST', '/agent/profiles', { name: 'x', scopes: ['root'] }],
        ['POST', '/agent/profiles', { name: 'x', scopes: [], limits: { toolCallsPerTurn: -1 } }],
      ] as const) {
        const res = await call(method, path, tokens.admin, body);
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
        expect(res.body.code).toEqual(expect.any(String));
      }
    });
  });

  // Last: after it the running host holds the old key.
  it('the key rotation re-seals every secret under the new master key, all or nothing, and a rerun skips', async () => {
    const previous = t.host.config.secrets.masterKey!.toString('base64');
    const next = randomBytes(32);
    const env = { DATABASE_URL: t.db.url, CUSTODIAN_MASTER_KEY_PREVIOUS: previous, CUSTODIAN_MASTER_KEY: next.toString('base64') };
    const wrong = { ...env, CUSTODIAN_MASTER_KEY_PREVIOUS: randomBytes(32).toString('base64') };
    const before = (await db.query(`SELECT org_id, sealed FROM agent_gateway.setting WHERE name = 'model.api_key'`)).rows[0];
    await expect(runSettingsKeyRotation(wrong)).rejects.toThrow(/another master key/);
    expect((await db.query(`SELECT sealed FROM agent_gateway.setting WHERE name = 'model.api_key'`)).rows[0].sealed).toBe(before.sealed);
    // model.api_key and the named provider's provider.local.api_key.
    expect(await runSettingsKeyRotation(env)).toEqual({ resealed: 2, skipped: 0 });
    const after = (await db.query(`SELECT sealed FROM agent_gateway.setting WHERE name = 'model.api_key'`)).rows[0].sealed;
    expect(new SettingsCipher(next).open(before.org_id, 'model.api_key', after)).toBe(API_KEY);
    expect(await runSettingsKeyRotation(env)).toEqual({ resealed: 0, skipped: 2 });
  });
});
