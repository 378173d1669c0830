import { Client as Pg } from 'pg';
import { McpSessions } from '../../apps/agent-gateway/src/mcp/mcp-sessions.service';
import { connectMcp } from '../support/agent-gateway';
import { apiClient, type Json } from '../support/api';
import { createMember, login, startTestHost, type TestHost } from '../support/host';

/**
 * CUSTODIAN_MCP_STATELESS=true: /mcp keeps no session, so any gateway replica can answer any
 * request (no sticky routing). The SDK's real Client works against it: initialize, tools/list,
 * reads and a proposal, each POST served on its own; the GET stream and DELETE are 405; the
 * checks (user ∩ agent, hidden tools, audit of every call) are the same as with sessions.
 */
describe('agent gateway: stateless mode', () => {
  let t: TestHost;
  let db: Pg;
  const { call, ok } = apiClient(() => t.host.url);
  let key: string;
  let recordId: string;

  beforeAll(async () => {
    t = await startTestHost('agent_gateway_stateless', { CUSTODIAN_MCP_STATELESS: 'true' });
    db = new Pg({ connectionString: t.db.url });
    await db.connect();
    const admin = (await login(t.host.url)).accessToken;
    await ok(
      call('POST', '/meta/objects', admin, {
        name: 'ticket',
        label: 'Ticket',
        sharingModel: 'private',
        fields: [
          { name: 'title', type: 'text', required: true },
          { name: 'secret', type: 'text', sensitive: true },
        ],
      }),
      201,
    );
    const set = await ok(
      call('POST', '/permission-sets', admin, {
        name: 'Support',
        objects: { ticket: { allowRead: true, allowCreate: true, allowEdit: true } },
        integrationCapabilities: ['api_access', 'mcp_access'],
      }),
      201,
    );
    const member = await createMember(t.host.url, admin, 'support', [set.id], 'a-long-enough-password');
    recordId = (await ok(call('POST', '/data/ticket', member.accessToken, { title: 'Printer on fire' }), 201)).id;
    key = (await ok(call('POST', '/api-keys', member.accessToken, { name: 'stateless agent' }), 201)).key;
  }, 120_000);

  afterAll(async () => {
    await db?.end();
    await t?.stop();
  });

  it('serves the SDK client without a session: list, read, propose — each POST on its own, nothing kept', async () => {
    const { client, transport } = await connectMcp(t.host.url, key, 'stateless-test');
    expect(transport.sessionId).toBeUndefined();
    const sessions = t.host.app.get(McpSessions);
    expect(sessions.size()).toBe(0);

    const tools = (await client.listTools()).tools.map((x) => x.name);
    expect(tools).toEqual(expect.arrayContaining(['query_records', 'update_record', 'get_pending_action']));
    expect(tools).not.toContain('delete_record');

    const read = (await client.callTool({ name: 'query_records', arguments: { object: 'ticket' } })) as Json;
    expect(read.isError).toBeFalsy();
    expect(read.structuredContent.records.map((r: Json) => r.id)).toEqual([recordId]);
    expect(JSON.stringify(read)).not.toContain('secret');

    // A tool this principal may not call answers like an unknown one, as with sessions.
    await expect(client.callTool({ name: 'delete_record', arguments: {} })).rejects.toMatchObject({ code: -32602 });

    const filed = (await client.callTool({
      name: 'update_record',
      arguments: { object: 'ticket', id: recordId, values: { title: 'Printer fixed' }, justification: 'Fixed on site' },
    })) as Json;
    expect(filed.isError).toBeFalsy();
    expect(filed.structuredContent.pendingAction.state).toBe('pending');
    const followed = (await client.callTool({
      name: 'get_pending_action',
      arguments: { id: filed.structuredContent.pendingAction.id },
    })) as Json;
    expect(followed.structuredContent.pendingAction).toMatchObject({ kind: 'record.update', object: 'ticket', state: 'pending' });
    expect(sessions.size()).toBe(0);
    await client.close();

    // Every call audited; no session events (there are no sessions).
    const events = (
      await db.query(`SELECT payload FROM agent_gateway.outbox WHERE payload->>'action' LIKE 'agent.%' ORDER BY id`)
    ).rows.map((r: { payload: Json }) => r.payload);
    expect(events.map((e: Json) => `${e.action} ${e.details.tool ?? ''} ${e.outcome}`)).toEqual([
      'agent.tool.called query_records success',
      'agent.tool.called delete_record denied',
      'agent.tool.called update_record success',
      'agent.tool.called get_pending_action success',
    ]);
  });

  it('has no event stream and nothing to end: GET and DELETE are 405', async () => {
    for (const method of ['GET', 'DELETE']) {
      const res = await fetch(`${t.host.url}/mcp`, {
        method,
        headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream', 'mcp-session-id': 'anything' },
      });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
    }
  });
});
