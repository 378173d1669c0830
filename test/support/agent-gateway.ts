import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createLogger, loadConfig, NatsBus, startHost, type RunningHost } from '@custodian/platform';
import { AgentGatewayModule } from '../../apps/agent-gateway/src/agent-gateway.module';
import { apiClient } from './api';
import { createMember, startTestHost, type TestHost } from './host';

export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

/** An MCP client on the MCP SDK, connected to `<url>/mcp` with a bearer credential (a delegated token or an API key). */
export interface Mcp {
  client: Client;
  transport: StreamableHTTPClientTransport;
  /** Ends the MCP session (if the server kept one) and closes the client. */
  close(): Promise<void>;
}

export async function connectMcp(url: string, token: string, name: string): Promise<Mcp> {
  const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(transport);
  return {
    client,
    transport,
    async close() {
      await transport.terminateSession().catch(() => undefined);
      await client.close();
    },
  };
}

/**
 * The distributed shape: a test host on NATS in a fresh namespace, and a second agent-gateway
 * process (its own NATS connection) on the same database and namespace. `env` goes to both.
 */
export async function startHostWithGatewayOnNats(
  prefix: string,
  env: Record<string, string> = {},
): Promise<{ t: TestHost; gateway: RunningHost }> {
  const namespace = `${prefix.slice(0, 2)}_${randomBytes(4).toString('hex')}`;
  const shared = { CUSTODIAN_MASTER_KEY: randomBytes(32).toString('base64'), ...env };
  const t = await startTestHost(prefix, { NATS_URL, CUSTODIAN_BUS_NAMESPACE: namespace, ...shared });
  const config = loadConfig(
    {
      DATABASE_URL: t.db.url,
      NATS_URL,
      CUSTODIAN_BUS_NAMESPACE: namespace,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'silent',
      CUSTODIAN_SHUTDOWN_GRACE_MS: '1000',
      ...shared,
    },
    'service',
    'agent-gateway',
  );
  const logger = createLogger({ level: 'silent', service: 'agent-gateway' });
  const bus = await NatsBus.connect({ url: NATS_URL, namespace, name: `${prefix}-gateway` }, logger);
  const gateway = await startHost({ config, logger, bus, databaseUrl: t.db.url, modules: [AgentGatewayModule] });
  return { t, gateway };
}

/** Users named `<name>@test.local`, each holding its permission set: their ids and access tokens by name. */
export async function createMembers(
  url: string,
  adminToken: string,
  members: ReadonlyArray<readonly [name: string, setId: string]>,
  password: string,
): Promise<{ users: Record<string, string>; tokens: Record<string, string> }> {
  const users: Record<string, string> = {};
  const tokens: Record<string, string> = {};
  for (const [name, set] of members) {
    const member = await createMember(url, adminToken, name, [set], password);
    users[name] = member.userId;
    tokens[name] = member.accessToken;
  }
  return { users, tokens };
}

/**
 * One user who may talk to the agent and see no object (`agent_access` + `api_access`, no object
 * permission): `<name>@test.local`, its id and access token.
 */
export async function createAgentUser(
  url: string,
  adminToken: string,
  name: string,
  password: string,
): Promise<{ userId: string; accessToken: string }> {
  const { ok, call } = apiClient(() => url);
  const set = await ok(
    call('POST', '/permission-sets', adminToken, {
      name: 'Agent users',
      objects: {},
      integrationCapabilities: ['api_access', 'agent_access'],
    }),
    201,
  );
  const { users, tokens } = await createMembers(url, adminToken, [[name, set.id as string]], password);
  return { userId: users[name]!, accessToken: tokens[name]! };
}
