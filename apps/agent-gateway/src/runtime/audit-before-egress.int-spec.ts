import { apiClient, type Json } from '../../../../test/support/api';
import { startFakeModelServer, type FakeModelServer } from '../../../../test/support/fake-model-server';
import { createMember, login, startTestHost, type TestHost } from '../../../../test/support/host';
import { GatewayAudit } from '../audit/gateway-audit.service';

/**
 * The runtime prepares its next model request while the executor's audit row of a tool call is
 * being written, but nothing of the tool's result leaves — to the model, or into the stored
 * conversation — before that row is committed; a result whose row cannot be written is withheld.
 */
describe('agent runtime: a tool result leaves only after its audit row', () => {
  let t: TestHost;
  let fake: FakeModelServer;
  let audit: GatewayAudit;
  let record: GatewayAudit['record'];
  const { call, ok } = apiClient(() => t.host.url);
  let admin: string;
  let rep: string;
  let account: string;
  let profileId: string;

  beforeAll(async () => {
    fake = await startFakeModelServer();
    t = await startTestHost('agent_audit_order');
    admin = (await login(t.host.url)).accessToken;
    await ok(
      call('POST', '/meta/objects', admin, {
        name: 'account',
        label: 'Account',
        sharingModel: 'private',
        fields: [{ name: 'name', type: 'text', required: true }],
      }),
      201,
    );
    const set = await ok(
      call('POST', '/permission-sets', admin, {
        name: 'Reps',
        objects: { account: { allowRead: true, allowCreate: true } },
        integrationCapabilities: ['api_access', 'agent_access'],
      }),
      201,
    );
    rep = (await createMember(t.host.url, admin, 'rep', [set.id], 'a-long-enough-password')).accessToken;
    account = (await ok(call('POST', '/data/account', rep, { name: 'Acme Secret Corp' }), 201)).id;
    await ok(call('PUT', '/agent/settings/model.base_url', admin, { value: fake.url }));
    await ok(call('PUT', '/agent/settings/model.max_retries', admin, { value: 0 }));
    profileId = (await ok(call('POST', '/agent/profiles', admin, { name: 'Reader', model: 'fake', scopes: ['data:read'] }), 201)).id;
    audit = t.host.app.get(GatewayAudit);
    record = audit.record.bind(audit);
  }, 180_000);

  afterEach(() => {
    audit.record = record;
  });

  afterAll(async () => {
    await t?.stop();
    await fake?.close();
  });

  const turn = async (): Promise<{ answer: Json; id: string }> => {
    const base = fake.requests.length;
    fake.script((_req, n) =>
      n === base
        ? { toolCalls: [{ name: 'get_record', arguments: JSON.stringify({ object: 'account', id: account }) }] }
        : { text: 'done' },
    );
    const id = (await ok(call('POST', '/agent/conversations', rep, { profileId }), 201)).id as string;
    const answer = await ok(call('POST', `/agent/conversations/${id}/messages`, rep, { content: 'read it' }));
    return { answer, id };
  };

  it('the model request carrying a result is sent only after the result’s audit row is committed', async () => {
    const order: string[] = [];
    audit.record = (principal, event) => {
      if (event.action !== 'agent.tool.called') return record(principal, event);
      order.push('audit started');
      return record(principal, event).then(() => void order.push('audit committed'));
    };
    const base = fake.requests.length;
    fake.script((_req, n) => {
      order.push(`model request ${n - base + 1}`);
      return n === base
        ? { toolCalls: [{ name: 'get_record', arguments: JSON.stringify({ object: 'account', id: account }) }] }
        : { text: 'done' };
    });
    const id = (await ok(call('POST', '/agent/conversations', rep, { profileId }), 201)).id as string;
    const answer = await ok(call('POST', `/agent/conversations/${id}/messages`, rep, { content: 'read it' }));
    expect(answer.state).toBe('idle');
    expect(order).toEqual(['model request 1', 'audit started', 'audit committed', 'model request 2']);
    const second = fake.requests[base + 1]!;
    expect(JSON.stringify(second.messages)).toContain('Acme Secret Corp');
  });

  it('a result whose audit row cannot be written is withheld from the model and from the stored conversation', async () => {
    audit.record = (principal, event) =>
      event.action === 'agent.tool.called' ? Promise.reject(new Error('audit store down')) : record(principal, event);
    const base = fake.requests.length;
    const { answer, id } = await turn();
    expect(fake.requests.length - base).toBe(2);
    const sent = JSON.stringify(fake.requests[base + 1]!.messages);
    expect(sent).not.toContain('Acme Secret Corp');
    expect(sent).toContain('could not be audited');
    const stored = await ok(call('GET', `/agent/conversations/${id}`, rep));
    expect(JSON.stringify(stored)).not.toContain('Acme Secret Corp');
    expect(JSON.stringify(answer)).not.toContain('Acme Secret Corp');
    const tool = (answer.messages as Json[]).find((m) => m.role === 'tool');
    expect(tool.content).toContain('could not be audited');
  });
});
