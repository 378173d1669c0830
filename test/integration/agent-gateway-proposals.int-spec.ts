import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as Pg } from 'pg';
import { apiClient, type Json } from '../support/api';
import { createMember, login, startTestHost, type TestHost } from '../support/host';

const PASSWORD = 'a-long-enough-password';
const READ_TOOLS = ['aggregate_records', 'describe_object', 'get_record', 'list_actions', 'list_objects', 'query_records'];
const RECORD_TOOLS = ['create_record', 'delete_record', 'get_pending_action', 'update_record'];

/**
 * The two structural proposal tools over MCP with the SDK's real client: run_action files an
 * action.run and propose_metadata_change files a metadata.change, each listed only when the agent's
 * scopes (and, for metadata, the user's manage_metadata) allow it, each applied only after a human
 * approves, and get_pending_action tells the agent the outcome.
 */
describe('agent gateway: run_action and propose_metadata_change', () => {
  let t: TestHost;
  let db: Pg;
  let mcpResource: string;
  const { call, ok } = apiClient(() => t.host.url);
  const tokens: Record<string, string> = {};
  const open: Client[] = [];

  const exchange = async (subject: string, scope: string): Promise<string> =>
    (
      await ok(
        call('POST', '/auth/token-exchange', undefined, {
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: subject,
          subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
          scope,
          client_id: 'copilot',
          agent_name: 'Copilot',
          audience: mcpResource,
        }),
      )
    ).access_token as string;
  const connect = async (token: string): Promise<Client> => {
    const transport = new StreamableHTTPClientTransport(new URL(`${t.host.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    });
    const client = new Client({ name: 'proposals-test', version: '1.0.0' });
    await client.connect(transport);
    open.push(client);
    return client;
  };
  const names = async (client: Client): Promise<string[]> => (await client.listTools()).tools.map((x) => x.name).sort();
  const tool = async (client: Client, name: string, args: Json): Promise<Json> => client.callTool({ name, arguments: args });
  const pendingCount = async (): Promise<number> => (await db.query(`SELECT count(*)::int AS n FROM approvals.pending_action`)).rows[0].n;
  const definition = (extra: Json[]) => ({
    name: 'deal',
    label: 'Deal',
    fields: [{ name: 'title', type: 'text' }, { name: 'amount', type: 'number' }, ...extra],
  });

  beforeAll(async () => {
    t = await startTestHost('agent_gateway_proposals', { CUSTODIAN_MCP_MAX_SESSIONS: '20' });
    mcpResource = t.host.config.auth.mcpResource;
    db = new Pg({ connectionString: t.db.url });
    await db.connect();
    tokens.admin = (await login(t.host.url)).accessToken;
    await ok(call('POST', '/meta/objects', tokens.admin, definition([])), 201);
    await ok(
      call('POST', '/bundles/apply', tokens.admin, {
        bundle: {
          apiVersion: 'custodian.dev/v1',
          kind: 'Bundle',
          name: 'deal-actions',
          actions: [{ name: 'zero_out', object: 'deal', label: 'Zero out', kind: 'update', set: { amount: 0 } }],
        },
      }),
    );
    const rep = await ok(
      call('POST', '/permission-sets', tokens.admin, {
        name: 'Reps',
        objects: { deal: { allowRead: true, allowCreate: true, allowEdit: true, allowDelete: true } },
        integrationCapabilities: ['api_access', 'agent_access', 'mcp_access'],
      }),
      201,
    );
    const stewards = await ok(
      call('POST', '/permission-sets', tokens.admin, {
        name: 'Stewards',
        objects: { deal: { allowRead: true, viewAllRecords: true, allowEdit: true } },
        systemCapabilities: ['manage_metadata', 'approve_actions'],
      }),
      201,
    );
    for (const [name, set] of [
      ['rep', rep.id],
      ['steward', stewards.id],
    ] as const) {
      tokens[name] = (await createMember(t.host.url, tokens.admin, name, [set], PASSWORD)).accessToken;
    }
  }, 90_000);

  afterAll(async () => {
    for (const client of open) await client.close().catch(() => undefined);
    await db?.end();
    await t?.stop();
  });

  it('run_action is listed only under actions:execute, files an action.run, and the action runs once a human approves', async () => {
    const deal = await ok(call('POST', '/data/deal', tokens.rep, { title: 'Renewal', amount: 100 }), 201);
    const plain = await connect(await exchange(tokens.rep, 'data:read data:write'));
    expect(await names(plain)).toEqual([...READ_TOOLS, ...RECORD_TOOLS].sort());
    // Unlisted means uncallable: the call is refused like an unknown tool and files nothing.
    const before = await pendingCount();
    await expect(
      tool(plain, 'run_action', { object: 'deal', id: deal.id, action: 'zero_out', justification: 'closing it' }),
    ).rejects.toThrow(/not found/);
    expect(await pendingCount()).toBe(before);

    const runner = await connect(await exchange(tokens.rep, 'data:read actions:execute'));
    const listed = await names(runner);
    expect(listed).toEqual(expect.arrayContaining(['run_action', 'get_pending_action']));
    expect(listed).not.toContain('propose_metadata_change');
    const res = await tool(runner, 'run_action', { object: 'deal', id: deal.id, action: 'zero_out', justification: 'closing it' });
    expect(res.isError).toBeFalsy();
    const filed = res.structuredContent.pendingAction;
    expect(filed).toMatchObject({ state: 'pending', diff: { amount: { from: 100, to: 0 } } });
    expect(res.structuredContent.applied).toBe(false);
    const row = (await db.query(`SELECT kind FROM approvals.pending_action WHERE id = $1`, [filed.id])).rows[0];
    expect(row.kind).toBe('action.run');
    // Nothing ran yet.
    expect((await ok(call('GET', `/data/deal/${deal.id}`, tokens.rep))).amount).toBe(100);
    expect((await tool(runner, 'get_pending_action', { id: filed.id })).structuredContent.pendingAction.state).toBe('pending');

    expect(await ok(call('POST', `/approvals/${filed.id}/approve`, tokens.steward, {}))).toMatchObject({ state: 'applied' });
    expect((await ok(call('GET', `/data/deal/${deal.id}`, tokens.rep))).amount).toBe(0);
    const followed = await tool(runner, 'get_pending_action', { id: filed.id });
    expect(followed.isError).toBeFalsy();
    expect(followed.structuredContent.pendingAction).toMatchObject({
      id: filed.id,
      kind: 'action.run',
      object: 'deal',
      recordId: deal.id,
      state: 'applied',
    });
    expect(followed.structuredContent.pendingAction.expiresAt).toEqual(expect.any(String));
    expect(followed.content[0].text).toContain('applied');
    expect(followed.content[0].text).toContain('action.run deal');
  });

  it('propose_metadata_change needs metadata:write and the user’s manage_metadata, files a metadata.change, applied after approval', async () => {
    const current = await ok(call('GET', '/meta/objects/deal', tokens.admin));
    // The rep has no manage_metadata: even with metadata:write the tool is not there.
    expect(await names(await connect(await exchange(tokens.rep, 'data:read metadata:write')))).not.toContain('propose_metadata_change');
    // The admin has it, but her agent keeps it only under metadata:write.
    const reader = await connect(await exchange(tokens.admin, 'data:read data:write'));
    expect(await names(reader)).not.toContain('propose_metadata_change');
    await expect(
      tool(reader, 'propose_metadata_change', {
        object: 'deal',
        definition: definition([{ name: 'stage', type: 'text' }]),
        justification: 'track the stage',
      }),
    ).rejects.toThrow(/not found/);

    const modeller = await connect(await exchange(tokens.admin, 'data:read metadata:write'));
    const listed = await names(modeller);
    expect(listed).toEqual(expect.arrayContaining(['propose_metadata_change', 'get_pending_action']));
    expect(listed).not.toContain('run_action');
    const res = await tool(modeller, 'propose_metadata_change', {
      object: 'deal',
      definition: definition([{ name: 'stage', type: 'text' }]),
      justification: 'track the stage',
    });
    expect(res.isError).toBeFalsy();
    const filed = res.structuredContent.pendingAction;
    expect(filed.state).toBe('pending');
    expect(filed.diff).toMatchObject({ fieldsAdded: [expect.objectContaining({ name: 'stage', type: 'text' })], fieldsRemoved: [] });
    const row = (await db.query(`SELECT kind FROM approvals.pending_action WHERE id = $1`, [filed.id])).rows[0];
    expect(row.kind).toBe('metadata.change');
    expect((await ok(call('GET', '/meta/objects/deal', tokens.admin))).version).toBe(current.version);

    expect(await ok(call('POST', `/approvals/${filed.id}/approve`, tokens.steward, {}))).toMatchObject({ state: 'applied' });
    const after = await ok(call('GET', '/meta/objects/deal', tokens.admin));
    expect(after.version).toBe(current.version + 1);
    expect(after.fields.map((f: Json) => f.name)).toContain('stage');
    const followed = await tool(modeller, 'get_pending_action', { id: filed.id });
    expect(followed.structuredContent.pendingAction).toMatchObject({
      id: filed.id,
      kind: 'metadata.change',
      object: 'deal',
      state: 'applied',
    });
  });
});
