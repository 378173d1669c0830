import type { RunningHost } from '@custodian/platform';
import { connectMcp, startHostWithGatewayOnNats } from '../support/agent-gateway';
import { apiClient, type Json } from '../support/api';
import { login, type TestHost } from '../support/host';

const MCP_RESOURCE = 'https://custodian.test/mcp';
const PASSWORD = 'a-long-enough-password';

/**
 * The gateway as a service of its own: a host running only AgentGatewayModule, with its own NATS
 * connection, beside a host running the other services on the same namespace. Every tool call
 * crosses NATS: the principal (identity), governed reads (objects), proposals (approvals).
 */
describe('agent gateway over NATS, as its own service', () => {
  let t: TestHost;
  let gateway: RunningHost;
  const { call, ok } = apiClient(() => t.host.url);

  beforeAll(async () => {
    ({ t, gateway } = await startHostWithGatewayOnNats('agent_gateway_nats', { CUSTODIAN_MCP_RESOURCE: MCP_RESOURCE }));
  }, 120_000);

  afterAll(async () => {
    await gateway?.stop();
    await t?.stop();
  });

  it('lists, reads and proposes across NATS with a delegated token; the proposal waits for approval', async () => {
    const admin = (await login(t.host.url)).accessToken;
    await ok(
      call('POST', '/meta/objects', admin, {
        name: 'ticket',
        label: 'Ticket',
        sharingModel: 'private',
        fields: [
          { name: 'title', type: 'text', required: true },
          { name: 'cost', type: 'number', sensitive: true },
        ],
      }),
      201,
    );
    const set = await ok(
      call('POST', '/permission-sets', admin, {
        name: 'Support',
        objects: { ticket: { allowRead: true, allowCreate: true, allowEdit: true } },
        integrationCapabilities: ['agent_access'],
      }),
      201,
    );
    const u = await ok(call('POST', '/users', admin, { email: 'support@test.local', displayName: 'support', password: PASSWORD }), 201);
    await ok(call('POST', `/permission-sets/${set.id}/assignments`, admin, { userId: u.userId ?? u.id }), 201);
    const token = (await login(t.host.url, { email: 'support@test.local', password: PASSWORD })).accessToken;
    const ticket = await ok(call('POST', '/data/ticket', token, { title: 'Printer on fire' }), 201);
    const agent = (
      await ok(
        call('POST', '/auth/token-exchange', undefined, {
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: token,
          subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
          scope: 'data:read data:write',
          client_id: 'helpdesk-bot',
          agent_name: 'Helpdesk bot',
          audience: MCP_RESOURCE,
        }),
      )
    ).access_token as string;

    const mcp = await connectMcp(gateway.url, agent, 'nats-test');
    const { client } = mcp;
    try {
      const tools = (await client.listTools()).tools.map((x) => x.name);
      expect(tools).toEqual(expect.arrayContaining(['query_records', 'update_record', 'create_record']));
      expect(tools).not.toContain('delete_record');
      const read: Json = await client.callTool({ name: 'query_records', arguments: { object: 'ticket' } });
      expect(read.structuredContent.records.map((r: Json) => r.id)).toEqual([ticket.id]);
      expect(JSON.stringify(read)).not.toContain('cost');
      const filed: Json = await client.callTool({
        name: 'update_record',
        arguments: { object: 'ticket', id: ticket.id, values: { title: 'Printer fixed' }, justification: 'resolved on site' },
      });
      expect(filed.structuredContent.pendingAction).toMatchObject({
        state: 'pending',
        diff: { title: { from: 'Printer on fire', to: 'Printer fixed' } },
      });
      const state: Json = await client.callTool({
        name: 'get_pending_action',
        arguments: { id: filed.structuredContent.pendingAction.id },
      });
      expect(state.structuredContent.pendingAction.state).toBe('pending');
      expect((await ok(call('GET', `/data/ticket/${ticket.id}`, token))).title).toBe('Printer on fire');
    } finally {
      await mcp.close();
    }
  });
});
