/**
 * What one `/mcp` request costs the process beyond its latency: bytes allocated, garbage collections
 * and CPU time per request, for `tools/list` (a principal over 200 objects: a 24 KiB answer) and for
 * `ping` (the per-request floor) on one open session. These are the figures behind the tools/list
 * p99 of gateway.bench.ts part (b): on a process that serves ~1,500 requests/s, the p99 is the share of
 * requests that meet a garbage-collection pause, and that share follows the bytes each request
 * allocates. Unlike latency percentiles they barely move with the load of a shared machine.
 *
 * The load client is node:http on a keep-alive agent (one socket, closed loop). It checks each answer's
 * status, that its first chunk carries `"result"`, and that it read exactly Content-Length bytes — it
 * reads every byte but never joins or decodes the body, so what it allocates is small beside the server.
 * Allocations are sampled with the inspector's heap profiler (`includeObjectsCollectedByMinorGC` and
 * `…MajorGC`, so short-lived objects count) and split by stack: a sample under the client's code
 * (its own code, or node's HTTP client and agent) is the client's, everything else the
 * server's. CPU time and collections are counted in separate, unsampled runs.
 *   node --expose-gc scripts/run-ts.cjs bench/agent-gateway/request-alloc.bench.ts
 * Env: BENCH_OBJECTS (200), BENCH_REQUESTS (3000 per run), BENCH_RUNS (3), BENCH_TOP (25 allocation sites),
 * BENCH_PROFILE_DIR (also write each sampled profile there, .heapprofile for Chrome DevTools).
 * Results → bench/results/agent-gateway-alloc.json.
 */
import http from 'node:http';
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { benchApi, startBenchHost, type Json } from '../support/bench-host';
import { environment, fmt, median, printTable, writeResults } from '../policy/bench-util';
import { signalScopedFetch } from './signal-scoped-fetch';

const OBJECTS = Number(process.env.BENCH_OBJECTS ?? 200);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 3000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const TOP = Number(process.env.BENCH_TOP ?? 25);
const ADMIN = { email: 'bench@gateway.local', password: 'gateway-bench-password' };

/** Collections seen, by kind. */
const gcs = { minor: 0, major: 0, other: 0, ms: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind;
    if (kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) gcs.minor++;
    else if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) gcs.major++;
    else gcs.other++;
    gcs.ms += entry.duration;
  }
}).observe({ entryTypes: ['gc'] });

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

const inspector = new Session();
inspector.connect();
const post = <T>(method: string, params?: object): Promise<T> =>
  new Promise((resolve, reject) => inspector.post(method, params, (error, result) => (error ? reject(error) : resolve(result as T))));

/** Frames that mark a sample as the load client's. */
const clientFrame = (f: ProfileNode['callFrame']): boolean =>
  f.url.endsWith('request-alloc.bench.ts') || f.url === 'node:_http_client' || f.url === 'node:_http_agent';

/** Bytes allocated (sampled) per side, and the server's top sites as "leaf ← caller ← caller". */
function attribute(root: ProfileNode): { client: number; server: number; sites: Map<string, number>; areas: Map<string, number> } {
  const out = { client: 0, server: 0, sites: new Map<string, number>(), areas: new Map<string, number>() };
  const frameName = (f: ProfileNode['callFrame']): string =>
    `${f.functionName || '(anonymous)'} ${f.url
      .replace(/^.*node_modules\//, '')
      .replace(/^.*\/work\/main\//, '')
      .replace(/^file:\/\//, '')}:${f.lineNumber + 1}`;
  const walk = (node: ProfileNode, stack: ProfileNode['callFrame'][], client: boolean): void => {
    const isClient = client || clientFrame(node.callFrame);
    const here = [...stack, node.callFrame];
    if (node.selfSize > 0) {
      if (isClient) out.client += node.selfSize;
      else {
        out.server += node.selfSize;
        const site = here
          .slice(-3)
          .reverse()
          .map((f) => frameName(f))
          .join(' ← ');
        out.sites.set(site, (out.sites.get(site) ?? 0) + node.selfSize);
        const area = areaOf(here);
        out.areas.set(area, (out.areas.get(area) ?? 0) + node.selfSize);
      }
    }
    for (const child of node.children) walk(child, here, isClient);
  };
  walk(root, [], false);
  return out;
}

/** Where a server sample was allocated: the package (or this repository's directory) of the innermost frame that has a file. */
function areaOf(stack: ProfileNode['callFrame'][]): string {
  for (let i = stack.length - 1; i >= 0; i--) {
    const url = stack[i].url;
    if (!url) continue;
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    if (pkg) return pkg[1];
    if (url.startsWith('node:')) return 'node';
    const own = /\/work\/main\/((?:apps|libs)\/[^/]+\/src\/[^/]+)/.exec(url);
    if (own) return own[1];
    return url.replace(/^.*\//, '');
  }
  return '(no file)';
}

async function main(): Promise<void> {
  const bench = await startBenchHost('bench_gateway_alloc', ADMIN, { CUSTODIAN_MCP_TOOL_CALLS_PER_MINUTE: '100000' });
  const { host } = bench;
  let client: Client | undefined;
  let transport: StreamableHTTPClientTransport | undefined;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const base = host.url;
    const call = benchApi(base);
    const { accessToken: admin } = await call('POST', '/auth/login', undefined, ADMIN);
    const fields = [
      { name: 'name', type: 'text', required: true },
      { name: 'region', type: 'select', options: ['west', 'east', 'north', 'south'] },
      { name: 'amount', type: 'currency' },
      { name: 'stage', type: 'text' },
      { name: 'closed_on', type: 'date' },
      { name: 'margin', type: 'number', sensitive: true },
    ];
    const names = ['deal', ...Array.from({ length: OBJECTS }, (_, i) => `obj_${String(i).padStart(3, '0')}`)];
    for (const name of names) await call('POST', '/meta/objects', admin, { name, label: name, fields });
    const grant = { allowRead: true, allowCreate: true, allowEdit: true };
    const wide = await call('POST', '/permission-sets', admin, {
      name: 'Wide',
      objects: Object.fromEntries(names.map((n) => [n, grant])),
      integrationCapabilities: ['api_access', 'mcp_access'],
    });
    const u = await call('POST', '/users', admin, { email: 'broad@bench.local', displayName: 'broad', password: 'a-long-enough-password' });
    await call('POST', `/permission-sets/${wide.id}/assignments`, admin, { userId: u.id });
    const { accessToken } = await call('POST', '/auth/login', undefined, {
      email: 'broad@bench.local',
      password: 'a-long-enough-password',
    });
    const { key } = await call('POST', '/api-keys', accessToken, { name: 'alloc bench', scopes: ['api_access', 'mcp_access'] });

    const mcpUrl = new URL(`${base}/mcp`);
    transport = new StreamableHTTPClientTransport(mcpUrl, {
      requestInit: { headers: { authorization: `Bearer ${key}` } },
      fetch: signalScopedFetch(),
    });
    client = new Client({ name: 'alloc-bench', version: '1.0.0' });
    await client.connect(transport);
    const tools = (await client.listTools()).tools.length;
    const headers = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${key}`,
      'mcp-session-id': transport.sessionId!,
      'mcp-protocol-version': transport.protocolVersion ?? '2025-06-18',
    };
    let rpcId = 1;
    let bytes = 0;
    // A keep-alive socket the server closed as idle (after a pause) can meet the next request: such a
    // request is sent again once on a new socket, as Node's documentation advises (`reusedSocket`).
    const once = (method: string, retry = true): Promise<void> =>
      new Promise((resolve, reject) => {
        const req = http.request(mcpUrl, { method: 'POST', agent, headers }, (res) => {
          let read = 0;
          let first = true;
          let ok = res.statusCode === 200;
          res.on('data', (chunk: Buffer) => {
            // The answer is `{"result":…`: its first chunk says whether it is a result.
            if (first) ok &&= chunk.includes('"result"');
            first = false;
            read += chunk.length;
          });
          res.on('end', () => {
            const length = Number(res.headers['content-length'] ?? read);
            if (!ok || read !== length) reject(new Error(`${method}: ${res.statusCode}, ${read} of ${length} bytes`));
            else {
              bytes = read;
              resolve();
            }
          });
          res.on('error', reject);
        });
        req.on('error', (error: NodeJS.ErrnoException) => {
          if (retry && req.reusedSocket && error.code === 'ECONNRESET') once(method, false).then(resolve, reject);
          else reject(error);
        });
        req.end(`{"jsonrpc":"2.0","id":${rpcId++},"method":"${method}","params":{}}`);
      });
    const many = async (method: string, n: number): Promise<void> => {
      for (let i = 0; i < n; i++) await once(method);
    };
    const env = environment(['@modelcontextprotocol/sdk', '@nestjs/core', 'express']);
    console.log(env);
    await many('tools/list', 2000);
    await many('ping', 2000);
    const listBytes = (await once('tools/list'), bytes);

    const measured: Record<string, Json> = {};
    const rows: Record<string, string | number>[] = [];
    for (const method of ['tools/list', 'ping']) {
      const cpu: number[] = [];
      const minors: number[] = [];
      const wall: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        Object.assign(gcs, { minor: 0, major: 0, other: 0, ms: 0 });
        const c0 = process.cpuUsage();
        const t0 = process.hrtime.bigint();
        await many(method, REQUESTS);
        const c = process.cpuUsage(c0);
        wall.push(Number(process.hrtime.bigint() - t0) / 1e6 / REQUESTS);
        // Observer entries arrive asynchronously: let them land.
        await new Promise((resolve) => setImmediate(resolve));
        cpu.push((c.user + c.system) / 1000 / REQUESTS);
        minors.push(((gcs.minor + gcs.major + gcs.other) * 1000) / REQUESTS);
      }
      await post('HeapProfiler.enable');
      await post('HeapProfiler.startSampling', {
        samplingInterval: 1024,
        includeObjectsCollectedByMinorGC: true,
        includeObjectsCollectedByMajorGC: true,
      });
      await many(method, REQUESTS);
      const { profile } = await post<{ profile: { head: ProfileNode } }>('HeapProfiler.stopSampling');
      await post('HeapProfiler.disable');
      const split = attribute(profile.head);
      const perRequest = { server: split.server / REQUESTS / 1024, client: split.client / REQUESTS / 1024 };
      const top = [...split.sites.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, TOP)
        .map(([site, size]) => ({ KiB: fmt(size / REQUESTS / 1024, 2), site }));
      if (process.env.BENCH_PROFILE_DIR)
        writeFileSync(path.join(process.env.BENCH_PROFILE_DIR, `${method.replace('/', '-')}.heapprofile`), JSON.stringify(profile));
      const areas = [...split.areas.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15);
      console.log(`\n${method}: server allocation by area (KiB per request)`);
      for (const [area, size] of areas) console.log(`${fmt(size / REQUESTS / 1024, 2).padStart(7)}  ${area}`);
      console.log(`\n${method}: top server allocation sites (KiB per request)`);
      for (const t of top) console.log(`${t.KiB.padStart(7)}  ${t.site}`);
      measured[method] = { cpuMsPerRequest: cpu, gcPer1000: minors, wallMsPerRequest: wall, allocKiBPerRequest: perRequest, top };
      rows.push({
        method,
        'server KiB/req': fmt(perRequest.server, 1),
        'client KiB/req': fmt(perRequest.client, 1),
        'GC per 1,000 req': fmt(median(minors), 1),
        'CPU ms/req (process)': fmt(median(cpu), 3),
        'wall ms/req': fmt(median(wall), 3),
      });
    }
    console.log(
      `\n/mcp on one session, ${tools} tools over ${names.length} objects (${fmt(listBytes / 1024, 1)} KiB answer); ${REQUESTS} requests per run, median of ${RUNS} runs`,
    );
    printTable(rows);
    const file = writeResults('agent-gateway-alloc', {
      environment: env,
      objects: names.length,
      tools,
      listBytes,
      requests: REQUESTS,
      runs: RUNS,
      measured,
    });
    console.log(`results → ${file}`);
  } finally {
    agent.destroy();
    await transport?.terminateSession().catch(() => undefined);
    await client?.close().catch(() => undefined);
    inspector.disconnect();
    await bench.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
