import { apiClient, type Json } from '../../../../test/support/api';
import { startFakeModelServer, type FakeModelServer } from '../../../../test/support/fake-model-server';
import { createMember, login, startTestHost, type TestHost } from '../../../../test/support/host';
import { GatewayAudit } from '../audit/gateway-audit.service';
import { runtimeStore } from './runtime-store';

type Step = Parameters<typeof runtimeStore.commitStep>[1];
/** The step commit that carries a tool call's audit row (the runtime defers a read's row into it). */
const carriesToolRow = (step: Step): boolean => step.outbox.some((o) => (o.payload as { action?: string }).action === 'agent.tool.called');

/**
 * A read tool call's audit row is committed in the same statement as the step that stores its
 * result (the runtime builds its next model request meanwhile), and nothing of the result leaves —
 * to the model, or into the stored conversation — before that statement committed; a result whose
 * row cannot be written is withheld.
 */
describe('agent runtime: a tool result leaves only after its audit row', () => {
  let t: TestHost;
  let fake: FakeModelServer;
  let audit: GatewayAudit;
  let record: GatewayAudit['record'];
  let prepare: GatewayAudit['prepare'];
  const commitStep = runtimeStore.commitStep;
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
    prepare = audit.prepare.bind(audit);
  }, 180_000);

  afterEach(() => {
    audit.record = record;
    audit.prepare = prepare;
    runtimeStore.commitStep = commitStep;
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

  it('the model request carrying a result is sent only after the result’s audit row is committed, with its message', async () => {
    const order: string[] = [];
    audit.record = (principal, event) => {
      if (event.action === 'agent.tool.called') order.push('audit written by the executor');
      return record(principal, event);
    };
    runtimeStore.commitStep = (db, step) => {
      if (!carriesToolRow(step)) return commitStep.call(runtimeStore, db, step);
      // The row goes in the very statement that stores the tool message holding the result.
      const message = step.messages.find((m) => m.role === 'tool');
      order.push(`audit started${message?.content.includes('Acme Secret Corp') ? ' with the result' : ''}`);
      return commitStep.call(runtimeStore, db, step).then((done) => {
        order.push('audit committed');
        return done;
      });
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
    expect(order).toEqual(['model request 1', 'audit started with the result', 'audit committed', 'model request 2']);
    const second = fake.requests[base + 1]!;
    expect(JSON.stringify(second.messages)).toContain('Acme Secret Corp');
  });

  it.each([
    [
      'its statement fails',
      () => {
        runtimeStore.commitStep = (db, step) =>
          carriesToolRow(step) ? Promise.reject(new Error('audit store down')) : commitStep.call(runtimeStore, db, step);
      },
    ],
    [
      'it is refused before any statement (backpressure)',
      () => {
        audit.prepare = (principal, event) => {
          if (event.action === 'agent.tool.called') throw new Error('audit backlog');
          return prepare(principal, event);
        };
      },
    ],
  ])('a result whose audit row cannot be written (%s) is withheld from the model and from the stored conversation', async (_why, fail) => {
    fail();
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
