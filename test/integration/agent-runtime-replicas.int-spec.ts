import type { RunningHost } from '@custodian/platform';
import { startHostWithGatewayOnNats } from '../support/agent-gateway';
import { apiClient, type Json } from '../support/api';
import { startFakeModelServer, type FakeModelServer, type Step } from '../support/fake-model-server';
import { createMember, login, type TestHost } from '../support/host';
import { pollUntil } from '../support/poll';

const PASSWORD = 'a-long-enough-password';

/** An open `/events` stream: everything received so far, as text. */
interface EventStream {
  text(): string;
  /** The `event: message` payloads received so far. */
  messages(): Json[];
  close(): void;
}

async function openEvents(baseUrl: string, token: string, conversationId: string): Promise<EventStream> {
  const abort = new AbortController();
  const res = await fetch(`${baseUrl}/api/v1/agent/conversations/${conversationId}/events`, {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    signal: abort.signal,
  });
  if (res.status !== 200) throw new Error(`/events answered ${res.status}: ${await res.text()}`);
  let text = '';
  const reader = res.body!.getReader();
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      text += Buffer.from(value).toString('utf8');
    }
  })().catch(() => undefined);
  // The stream is live once its first event (the current state) arrived.
  await pollUntil(async () => text.includes('event: state'), { what: 'the /events stream opened' });
  return {
    text: () => text,
    messages: () => [...text.matchAll(/^event: message\ndata: (.*)$/gm)].map((m) => JSON.parse(m[1]!).message),
    close: () => abort.abort(),
  };
}

/**
 * Two agent gateways over one database and one NATS namespace (the all-in-one over NATS, and a
 * gateway-only host beside it): a conversation's `/events` stream on one replica sees what the
 * other produced — a turn posted to the other, and a turn resumed by whichever replica consumed
 * the pending-action decision.
 */
describe('agent runtime: live events across replicas (NATS)', () => {
  let t: TestHost;
  let b: RunningHost;
  let fake: FakeModelServer;
  const a = apiClient(() => t.host.url);
  const tokens: Record<string, string> = {};
  let profileId: string;
  let account: string;

  beforeAll(async () => {
    fake = await startFakeModelServer();
    ({ t, gateway: b } = await startHostWithGatewayOnNats('agent_runtime_replicas'));

    tokens.admin = (await login(t.host.url)).accessToken;
    await a.ok(
      a.call('POST', '/meta/objects', tokens.admin, {
        name: 'account',
        label: 'Account',
        sharingModel: 'private',
        fields: [
          { name: 'name', type: 'text', required: true },
          { name: 'amount', type: 'number' },
        ],
      }),
      201,
    );
    const reps = await a.ok(
      a.call('POST', '/permission-sets', tokens.admin, {
        name: 'Reps',
        objects: { account: { allowRead: true, allowCreate: true, allowEdit: true } },
        integrationCapabilities: ['api_access', 'agent_access'],
      }),
      201,
    );
    const managers = await a.ok(
      a.call('POST', '/permission-sets', tokens.admin, {
        name: 'Managers',
        objects: { account: { allowRead: true, viewAllRecords: true, allowEdit: true } },
        systemCapabilities: ['approve_actions'],
      }),
      201,
    );
    tokens.rep = (await createMember(t.host.url, tokens.admin, 'rep', [reps.id], PASSWORD)).accessToken;
    tokens.manager = (await createMember(t.host.url, tokens.admin, 'manager', [managers.id], PASSWORD)).accessToken;
    account = (await a.ok(a.call('POST', '/data/account', tokens.rep, { name: 'Acme', amount: 1 }), 201)).id;
    await a.ok(a.call('PUT', '/agent/settings/model.base_url', tokens.admin, { value: fake.url }));
    await a.ok(a.call('PUT', '/agent/settings/model.max_retries', tokens.admin, { value: 0 }));
    profileId = (
      await a.ok(
        a.call('POST', '/agent/profiles', tokens.admin, { name: 'Copilot', model: 'fake', scopes: ['data:read', 'data:write'] }),
        201,
      )
    ).id;
  }, 180_000);

  afterAll(async () => {
    await b?.stop();
    await t?.stop();
    await fake?.close();
  });

  const script = (...list: Step[]): void => {
    const base = fake.requests.length;
    fake.script((_req, n) => list[n - base] ?? { text: 'done' });
  };

  it('a turn posted to replica A streams to an /events watcher on replica B', async () => {
    const id = (await a.ok(a.call('POST', '/agent/conversations', tokens.rep, { profileId }), 201)).id;
    const onB = await openEvents(b.url, tokens.rep, id);
    try {
      script(
        { toolCalls: [{ name: 'get_record', arguments: JSON.stringify({ object: 'account', id: account }) }] },
        { text: 'Seen from the other replica.' },
      );
      const answer = await a.ok(a.call('POST', `/agent/conversations/${id}/messages`, tokens.rep, { content: 'read Acme' }));
      expect(answer.state).toBe('idle');
      await pollUntil(async () => onB.text().includes('event: done'), { what: 'the turn’s end on replica B' });
      // Every stored message of the turn, in order, with the ids replica A stored.
      expect(onB.messages().map((m) => m.id)).toEqual(answer.messages.map((m: Json) => m.id));
      expect(onB.messages().map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant']);
      expect(onB.text()).toMatch(/event: state\ndata: \{"state":"idle"\}/);
    } finally {
      onB.close();
    }
  });

  it('a conversation resumed by a pending-action decision streams to watchers on both replicas', async () => {
    const id = (await a.ok(a.call('POST', '/agent/conversations', tokens.rep, { profileId }), 201)).id;
    script(
      {
        toolCalls: [
          {
            name: 'update_record',
            arguments: JSON.stringify({ object: 'account', id: account, values: { amount: 5 }, justification: 'bigger order' }),
          },
        ],
      },
      { text: 'Filed; a manager decides.' },
      { text: 'Approved and applied.' },
    );
    const answer = await a.ok(a.call('POST', `/agent/conversations/${id}/messages`, tokens.rep, { content: 'set Acme to 5' }));
    expect(answer.state).toBe('waiting_approval');
    const pendingId = answer.messages.find((m: Json) => m.role === 'tool').pendingActionId;
    const streams = [await openEvents(t.host.url, tokens.rep, id), await openEvents(b.url, tokens.rep, id)];
    try {
      await a.ok(a.call('POST', `/approvals/${pendingId}/approve`, tokens.manager, {}));
      for (const stream of streams) {
        await pollUntil(async () => stream.messages().some((m) => m.content === 'Approved and applied.'), {
          what: 'the resumed answer on both replicas',
          timeoutMs: 30_000,
        });
        expect(stream.text()).toContain(`"pendingActionId":"${pendingId}","state":"applied"`);
      }
    } finally {
      for (const stream of streams) stream.close();
    }
  });
});
