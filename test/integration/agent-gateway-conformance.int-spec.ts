import { spawn } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { apiClient } from '../support/api';
import { login, startTestHost, type TestHost } from '../support/host';

/**
 * The public MCP conformance suite (@modelcontextprotocol/conformance) against /mcp. The scenarios
 * below are every server scenario that applies to this server; the others exercise the reference
 * server's fixtures (tools such as `test_simple_text` or `json_schema_2020_12_tool`, `test://`
 * resources, prompts) or capabilities this server does not offer (logging, completions, resource
 * subscriptions, sampling, elicitation) — docs/agent-gateway.md lists them.
 */
const APPLICABLE = [
  'server-initialize',
  'ping',
  'tools-list',
  'resources-list',
  'server-sse-multiple-streams',
  'server-sse-polling',
  'dns-rebinding-protection',
];

function runScenario(url: string, scenario: string): Promise<{ code: number | null; out: string }> {
  const cli = require.resolve('@modelcontextprotocol/conformance/dist/index.js');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, 'server', '--url', url, '--scenario', scenario], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe('agent gateway: the MCP conformance suite', () => {
  let t: TestHost;
  let proxy: Server;
  let url: string;

  beforeAll(async () => {
    t = await startTestHost('agent_gateway_conformance');
    const { ok, call } = apiClient(() => t.host.url);
    const admin = (await login(t.host.url)).accessToken;
    await ok(call('POST', '/meta/objects', admin, { name: 'note', label: 'Note', fields: [{ name: 'body', type: 'text' }] }), 201);
    const key = (await ok(call('POST', '/api-keys', admin, { name: 'conformance' }), 201)).key as string;
    // The suite's client sends no credentials; this loopback proxy adds an API key with mcp_access
    // and changes nothing else (Host and Origin pass through, so the rebinding checks see ours).
    const target = new URL(t.host.url);
    proxy = createServer((req, res) => {
      const upstream = request(
        {
          host: target.hostname,
          port: target.port,
          path: '/mcp',
          method: req.method,
          headers: { ...req.headers, authorization: `Bearer ${key}` },
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/mcp`;
  }, 120_000);

  afterAll(async () => {
    proxy?.closeAllConnections();
    await new Promise((resolve) => proxy?.close(resolve));
    await t?.stop();
  });

  it.each(APPLICABLE)(
    '%s passes',
    async (scenario) => {
      const { code, out } = await runScenario(url, scenario);
      if (code !== 0 || /FAILURE/.test(out)) throw new Error(`conformance ${scenario} failed (exit ${code}):\n${out.slice(-4000)}`);
      expect(out).toMatch(/0 failed/);
    },
    120_000,
  );
});
