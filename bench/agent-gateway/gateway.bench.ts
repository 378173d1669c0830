/**
 * The agent gateway's cost, in one run against the all-in-one on 127.0.0.1 (embedded in this process):
 *  (a) `query_records` through the MCP SDK's Client (Streamable HTTP) vs the same query over REST
 *      `POST /api/v1/query`, same API key, same page (50 deals out of 20,000 the user can partly
 *      see), 2 closed-loop clients per side. Both sides use the same HTTP client stack (undici
 *      fetch), sides take turns in rotating order, and each verdict is the median of the paired
 *      rounds (each MCP run against the REST run of its round). Target: p50 and p99 ratio ≤ 1.3.
 *  (b) `tools/list` for a principal that may read, create and edit 200 objects: one client, raw
 *      JSON-RPC over the session (what the server spends) beside `ping` on the same session (the
 *      per-request floor), rotating order, and tools/list minus ping per paired round (what listing
 *      costs beyond any request); also the SDK client's listTools and the first tools/list of fresh
 *      API keys (creating a key moves the policy version: a catalog miss). The raw calls are made twice:
 *      with fetch (undici: web streams, body tees — about half of what the process allocates per request)
 *      and with node:http on a keep-alive agent (a load client that allocates little, as the governed-list
 *      bench uses), so the process's garbage collection is mostly the server's: it checks the status, that
 *      the first chunk carries "result" and that it read exactly Content-Length bytes — every byte is read,
 *      the body is never joined or decoded. Target: p99 ≤ 5 ms (raw, warm, node:http client; the fetch
 *      rows are printed beside it). What each request allocates: request-alloc.bench.ts.
 *  (c) 200 MCP sessions held open at once and used (each calls tools/list and query_records per
 *      cycle): heap (after a forced GC) and RSS sampled before opening, after every cycle, and after
 *      closing. "Flat" means: from the first to the last cycle the heap grows by ≤ 8 MiB and by ≤ 10 %,
 *      and after all sessions are closed the heap is within 16 MiB of before opening. The sample is of
 *      this whole process (server and the 200 clients), so it over-counts, never under-counts.
 *  (d) 200 concurrent sessions opened (20 at a time), one query_records call in each, all closed
 *      (DELETE) — repeated BENCH_CHURN_ROUNDS times; heap after a forced GC per round. Flat: the last
 *      round's heap within +10 % of the first's.
 *   node --expose-gc scripts/run-ts.cjs bench/agent-gateway/gateway.bench.ts
 * Env: BENCH_PARTS (a,b,c,d), BENCH_RECORDS (20000), BENCH_RUNS (5), BENCH_SECONDS (2 per run and side),
 * BENCH_OBJECTS (200), BENCH_SESSIONS (200), BENCH_CYCLES (5), BENCH_CHURN_ROUNDS (5).
 * Results → bench/results/agent-gateway.json.
 */
import { randomBytes } from 'node:crypto';
import { getEventListeners } from 'node:events';
import http from 'node:http';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Pool } from 'pg';
import { McpAuthenticator } from '../../apps/agent-gateway/src/auth/mcp-authenticator';
import { jsonRpcMessage } from '../../apps/agent-gateway/src/mcp/json-http-transport';
import { McpSessions } from '../../apps/agent-gateway/src/mcp/mcp-sessions.service';
import { ToolCatalogService } from '../../apps/agent-gateway/src/tools/tool-catalog.service';
import { recordTableName } from '../../apps/objects/src/metadata/org-tables';
import { benchApi, startBenchHost, type Json } from '../support/bench-host';
import { environment, fmt, median, percentile, printTable, writeResults } from '../policy/bench-util';
import { signalScopedFetch } from './signal-scoped-fetch';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 20_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const OBJECTS = Number(process.env.BENCH_OBJECTS ?? 200);
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 200);
const CYCLES = Number(process.env.BENCH_CYCLES ?? 5);
/** Which parts run: a (query_records vs REST), b (tools/list), c (sessions held), d (sessions opened and closed in rounds). */
const PARTS = new Set((process.env.BENCH_PARTS ?? 'a,b,c,d').split(',').map((x) => x.trim()));
const CHURN_ROUNDS = Number(process.env.BENCH_CHURN_ROUNDS ?? 5);
const CLIENTS = 2;
const PAGE = 50;
const ADMIN = { email: 'bench@gateway.local', password: 'gateway-bench-password' };

interface RunResult {
  rps: number;
  p50: number;
  p99: number;
  n: number;
  errors: number;
  /** Event-loop delay of this process during the run (server and client share it), ms. */
  loopP99: number;
  loopMax: number;
  /** Garbage collections during the run: count, summed and longest pause, ms. */
  gcCount: number;
  gcMs: number;
  gcMaxMs: number;
}

/** GC pauses as V8 reports them; `load` reads the entries of its own run. */
const gcPauses: number[] = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcPauses.push(entry.duration);
}).observe({ entryTypes: ['gc'] });

/** The first few distinct error messages, printed at the end (errors fail the run). */
const errorSamples = new Set<string>();
function noteError(error: unknown): void {
  if (errorSamples.size < 5) errorSamples.add(error instanceof Error ? error.message.slice(0, 300) : String(error).slice(0, 300));
}

/** Closed loop: `workers` (one per client) call back to back for SECONDS. */
async function load(workers: Array<() => Promise<void>>): Promise<RunResult> {
  const latencies: number[] = [];
  let errors = 0;
  const loop = monitorEventLoopDelay({ resolution: 1 });
  gcPauses.length = 0;
  loop.enable();
  const started = Date.now();
  const end = started + SECONDS * 1000;
  await Promise.all(
    workers.map(async (work) => {
      while (Date.now() < end) {
        const t0 = process.hrtime.bigint();
        try {
          await work();
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        } catch (error) {
          errors++;
          noteError(error);
        }
      }
    }),
  );
  const elapsed = (Date.now() - started) / 1000;
  loop.disable();
  const gc = gcPauses.splice(0);
  return {
    rps: latencies.length / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    n: latencies.length,
    errors,
    loopP99: loop.percentile(99) / 1e6,
    loopMax: loop.max / 1e6,
    gcCount: gc.length,
    gcMs: gc.reduce((a, b) => a + b, 0),
    gcMaxMs: gc.length > 0 ? Math.max(...gc) : 0,
  };
}

const summary = (runs: RunResult[]) => ({
  rps: median(runs.map((r) => r.rps)),
  p50: median(runs.map((r) => r.p50)),
  p99: median(runs.map((r) => r.p99)),
  errors: runs.reduce((n, r) => n + r.errors, 0),
  loopP99: median(runs.map((r) => r.loopP99)),
  loopMax: median(runs.map((r) => r.loopMax)),
  gcPerS: median(runs.map((r) => r.gcCount / SECONDS)),
  gcMaxMs: median(runs.map((r) => r.gcMaxMs)),
});
const row = (name: string, s: ReturnType<typeof summary>) => ({
  side: name,
  'req/s': fmt(s.rps),
  'p50 ms': fmt(s.p50),
  'p99 ms': fmt(s.p99),
  errors: s.errors,
  'loop delay p99/max ms': `${fmt(s.loopP99)}/${fmt(s.loopMax)}`,
  'GC/s, longest ms': `${fmt(s.gcPerS, 1)}, ${fmt(s.gcMaxMs)}`,
});

/** Runs the sides RUNS times, taking turns in a rotating order so none is always measured first. */
async function rounds(sides: Array<() => Promise<RunResult>>): Promise<RunResult[][]> {
  const out: RunResult[][] = sides.map(() => []);
  for (let i = 0; i < RUNS; i++) {
    for (let k = 0; k < sides.length; k++) {
      const s = (i + k) % sides.length;
      out[s].push(await sides[s]());
    }
  }
  return out;
}

function memory(): { heapMiB: number; rssMiB: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  const m = process.memoryUsage();
  return { heapMiB: m.heapUsed / 2 ** 20, rssMiB: m.rss / 2 ** 20 };
}

async function main(): Promise<void> {
  const bench = await startBenchHost('bench_gateway', ADMIN, {
    // The limits are not what is measured: high enough that no call of the benchmark meets them.
    CUSTODIAN_MCP_TOOL_CALLS_PER_MINUTE: '100000',
    CUSTODIAN_MCP_MAX_SESSIONS: String(SESSIONS + 50),
  });
  const { host, db } = bench;
  const pool = new Pool({ connectionString: db.url, max: 2 });
  const open: Array<{ client: Client; transport: StreamableHTTPClientTransport }> = [];
  // Client.close() only drops the connection; the server keeps a session until it is terminated (DELETE) or idles out.
  const closeAll = async (): Promise<void> => {
    for (const { client, transport } of open.splice(0)) {
      await transport.terminateSession().catch(() => undefined);
      await client.close().catch(() => undefined);
    }
  };
  try {
    const base = host.url;
    const mcpUrl = new URL(`${base}/mcp`);
    const call = benchApi(base);
    const { accessToken: admin, orgId } = await call('POST', '/auth/login', undefined, ADMIN);

    // World: a private deal object, the rep owns 1/20 of 20,000 deals; 200 more objects for tools/list.
    const fields = [
      { name: 'name', type: 'text', required: true },
      { name: 'region', type: 'select', options: ['west', 'east', 'north', 'south'] },
      { name: 'amount', type: 'currency' },
      { name: 'stage', type: 'text' },
      { name: 'closed_on', type: 'date' },
      { name: 'margin', type: 'number', sensitive: true },
    ];
    await call('POST', '/meta/objects', admin, { name: 'deal', label: 'Deal', sharingModel: 'private', fields });
    const setupStarted = Date.now();
    const extra: string[] = [];
    for (let i = 0; i < OBJECTS; i++) {
      const name = `obj_${String(i).padStart(3, '0')}`;
      extra.push(name);
      await call('POST', '/meta/objects', admin, { name, label: `Object ${i}`, fields });
    }
    console.log(`created ${OBJECTS} objects in ${fmt((Date.now() - setupStarted) / 1000)} s`);
    const grant = { allowRead: true, allowCreate: true, allowEdit: true };
    const reps = await call('POST', '/permission-sets', admin, {
      name: 'Reps',
      objects: { deal: grant },
      integrationCapabilities: ['api_access', 'mcp_access'],
    });
    const wide = await call('POST', '/permission-sets', admin, {
      name: 'Wide',
      objects: Object.fromEntries([['deal', grant], ...extra.map((n) => [n, grant])]),
      integrationCapabilities: ['api_access', 'mcp_access'],
    });
    const user = async (name: string, set: string): Promise<{ id: string; token: string }> => {
      const u = await call('POST', '/users', admin, {
        email: `${name}@bench.local`,
        displayName: name,
        password: 'a-long-enough-password',
      });
      await call('POST', `/permission-sets/${set}/assignments`, admin, { userId: u.id });
      const { accessToken } = await call('POST', '/auth/login', undefined, {
        email: `${name}@bench.local`,
        password: 'a-long-enough-password',
      });
      return { id: u.id, token: accessToken };
    };
    const rep = await user('rep', reps.id);
    const broad = await user('broad', wide.id);
    const apiKey = async (token: string): Promise<string> =>
      (await call('POST', '/api-keys', token, { name: `bench ${randomBytes(4).toString('hex')}`, scopes: ['api_access', 'mcp_access'] }))
        .key;
    const repKey = await apiKey(rep.token);
    const broadKey = await apiKey(broad.token);

    const table = `objects."${recordTableName(orgId, 'deal')}"`;
    await pool.query(
      `INSERT INTO ${table} (id, org_id, owner_id, created_by, updated_by, name, region, amount, stage, closed_on, margin)
       SELECT gen_random_uuid(), $1, CASE WHEN i % 20 = 0 THEN $2::uuid ELSE gen_random_uuid() END, $2, $2,
              'deal ' || i, (ARRAY['west','east','north','south'])[1 + i % 4], (i * 37) % 10000,
              CASE WHEN i % 3 = 0 THEN 'won' ELSE 'open' END, '2026-01-01', 0.1
         FROM generate_series(1, $3) i`,
      [orgId, rep.id, RECORDS],
    );
    await pool.query(`ANALYZE ${table}`);

    // Every client's requests get their own abort signal (signal-scoped-fetch.ts): the SDK transport's one
    // signal per client otherwise collects an abort listener per request until a GC. `plainFetch` keeps
    // the SDK's default, for the side that shows what that costs.
    const connect = async (key: string, plainFetch = false): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> => {
      const transport = new StreamableHTTPClientTransport(mcpUrl, {
        requestInit: { headers: { authorization: `Bearer ${key}` } },
        ...(plainFetch ? {} : { fetch: signalScopedFetch() }),
      });
      const client = new Client({ name: 'gateway-bench', version: '1.0.0' });
      await client.connect(transport);
      open.push({ client, transport });
      return { client, transport };
    };
    const env = environment(['@modelcontextprotocol/sdk', '@nestjs/core', 'pg', 'undici']);
    console.log(env);

    const results: Record<string, unknown> = { environment: env, records: RECORDS, runs: RUNS, seconds: SECONDS };
    const targets: Record<string, { met: boolean; [k: string]: unknown }> = {};
    let failures = 0;

    // (a) query_records vs POST /api/v1/query.
    if (PARTS.has('a')) {
      const query = { object: 'deal', limit: PAGE };
      const restOnce = async (): Promise<Json> => {
        const res = await fetch(`${base}/api/v1/query`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${repKey}` },
          body: JSON.stringify(query),
        });
        const body = (await res.json()) as Json;
        if (res.status !== 200) throw new Error(`REST ${res.status}`);
        return body;
      };
      const mcpClients = await Promise.all(Array.from({ length: CLIENTS }, () => connect(repKey)));
      const toolOnce = async (client: Client): Promise<Json> => {
        const res = (await client.callTool({ name: 'query_records', arguments: query })) as Json;
        if (res.isError) throw new Error(`tool error ${JSON.stringify(res.structuredContent)}`);
        return res;
      };
      // Gate: both sides answer the same page.
      const restFirst = await restOnce();
      const toolFirst = await toolOnce(mcpClients[0].client);
      const ids = (rows: Array<{ id: string }>) => JSON.stringify(rows.map((r) => r.id));
      if (restFirst.items.length !== PAGE || ids(restFirst.items) !== ids(toolFirst.structuredContent.records))
        throw new Error('REST and query_records disagree on the first page');
      const restSide = () => load(Array.from({ length: CLIENTS }, () => async () => void (await restOnce())));
      const mcpSide = () =>
        load(
          mcpClients.map(
            ({ client }) =>
              async () =>
                void (await toolOnce(client)),
          ),
        );
      await restSide(); // warm-up
      await mcpSide();
      const [mcpRuns, restRuns] = await rounds([mcpSide, restSide]);
      const q = { mcp: summary(mcpRuns), rest: summary(restRuns) };
      const p50Ratio = median(mcpRuns.map((r, i) => r.p50 / restRuns[i].p50));
      const p99Ratio = median(mcpRuns.map((r, i) => r.p99 / restRuns[i].p99));
      console.log(`\n(a) ${RECORDS} deals, page ${PAGE}, ${CLIENTS} clients, ${RUNS} rounds × ${SECONDS}s per side (median)`);
      printTable([row('MCP query_records (SDK client)', q.mcp), row('REST POST /api/v1/query', q.rest)]);
      console.log(`MCP/REST latency ratio (median of paired rounds): p50 ${fmt(p50Ratio, 3)}, p99 ${fmt(p99Ratio, 3)} (target ≤ 1.3)`);
      results.query = { clients: CLIENTS, page: PAGE, mcp: mcpRuns, rest: restRuns, summary: q, p50Ratio, p99Ratio };
      targets.queryP50Ratio = { value: p50Ratio, target: 1.3, met: p50Ratio <= 1.3 };
      targets.queryP99Ratio = { value: p99Ratio, target: 1.3, met: p99Ratio <= 1.3 };
      failures += q.mcp.errors + q.rest.errors;
    }

    // (b) tools/list over 200 objects: raw JSON-RPC on one session, with ping as the floor.
    if (PARTS.has('b')) {
      const { client: broadClient, transport: broadTransport } = await connect(broadKey);
      const listed = await broadClient.listTools();
      const sessionId = broadTransport.sessionId!;
      const protocol = broadTransport.protocolVersion ?? '2025-06-18';
      let rpcId = 1000;
      const raw = async (method: string): Promise<number> => {
        const res = await fetch(mcpUrl, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            authorization: `Bearer ${broadKey}`,
            'mcp-session-id': sessionId,
            'mcp-protocol-version': protocol,
          },
          body: JSON.stringify({ jsonrpc: '2.0', id: rpcId++, method, params: {} }),
        });
        const text = await res.text();
        if (res.status !== 200 || !text.includes('"result"')) throw new Error(`${method} ${res.status}`);
        return text.length;
      };
      const listBytes = await raw('tools/list');
      // The same raw call on node:http with a keep-alive agent (one socket: one closed-loop client).
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const rawHeaders = {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${broadKey}`,
        'mcp-session-id': sessionId,
        'mcp-protocol-version': protocol,
      };
      // A keep-alive socket the server closed as idle (its 5 s keep-alive timeout; the other sides ran
      // meanwhile) can meet the next request: such a request is sent again once, on a new socket, as
      // Node's documentation advises (`reusedSocket`). Any other failure counts as an error.
      const lean = (method: string, retry = true): Promise<void> =>
        new Promise((resolve, reject) => {
          const req = http.request(mcpUrl, { method: 'POST', agent, headers: rawHeaders }, (res) => {
            // Reads every byte, but neither joins nor decodes the body: the answer is `{"result":…`, so its
            // first chunk says whether it is a result, and the bytes read must be its Content-Length.
            let read = 0;
            let ok = res.statusCode === 200;
            res.on('data', (c: Buffer) => {
              if (read === 0) ok &&= c.includes('"result"');
              read += c.length;
            });
            res.on('end', () => {
              const length = Number(res.headers['content-length'] ?? read);
              if (!ok || read !== length) reject(new Error(`${method} ${res.statusCode}, ${read} of ${length} bytes`));
              else resolve();
            });
            res.on('error', reject);
          });
          req.on('error', (error: NodeJS.ErrnoException) => {
            if (retry && req.reusedSocket && error.code === 'ECONNRESET') lean(method, false).then(resolve, reject);
            else reject(error);
          });
          req.end(JSON.stringify({ jsonrpc: '2.0', id: rpcId++, method, params: {} }));
        });
      const leanListSide = () => load([() => lean('tools/list')]);
      const leanPingSide = () => load([() => lean('ping')]);
      const listSide = () => load([async () => void (await raw('tools/list'))]);
      const pingSide = () => load([async () => void (await raw('ping'))]);
      const sdkSide = () => load([async () => void (await broadClient.listTools())]);
      // The same SDK client with the transport's one signal on every fetch (the SDK's default).
      const { client: plainClient, transport: plainTransport } = await connect(broadKey, true);
      const plainSide = () => load([async () => void (await plainClient.listTools())]);
      const abortListeners = (t: StreamableHTTPClientTransport): number =>
        getEventListeners((t as unknown as { _abortController: AbortController })._abortController.signal, 'abort').length;
      await listSide();
      await leanListSide();
      const [listRuns, pingRuns, sdkRuns, plainRuns, leanListRuns, leanPingRuns] = await rounds([
        listSide,
        pingSide,
        sdkSide,
        plainSide,
        leanListSide,
        leanPingSide,
      ]);
      agent.destroy();
      const listeners = { scoped: abortListeners(broadTransport), plain: abortListeners(plainTransport) };
      // Cold: the first tools/list of a fresh credential of the same user (its catalog entry is shared by principal content).
      const cold: number[] = [];
      for (let i = 0; i < 10; i++) {
        const { client } = await connect(await apiKey(broad.token));
        const t0 = process.hrtime.bigint();
        await client.listTools();
        cold.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      // The server's own work per tools/list, in process without HTTP or the event-loop queue of a loaded
      // machine: authenticate the bearer (cached principal), parse the JSON-RPC request, look the list up
      // in the catalog and frame the answer.
      const authenticator = host.app.get(McpAuthenticator);
      const catalog = host.app.get(ToolCatalogService);
      const serverWork: number[] = [];
      const cpu0 = process.cpuUsage();
      for (let i = 0; i < 2000; i++) {
        const t0 = process.hrtime.bigint();
        const principal = await authenticator.authenticate(`Bearer ${broadKey}`);
        jsonRpcMessage({ jsonrpc: '2.0', id: i, method: 'tools/list', params: {} });
        const list = catalog.cachedList(principal) ?? (await catalog.listFor(principal));
        // As /mcp frames it: the cached bytes between two short pieces, with their length.
        const length = '{"result":'.length + list.bytes.length + Buffer.byteLength(`,"jsonrpc":"2.0","id":${i}}`);
        if (length <= list.bytes.length || !list.json.startsWith('{"tools":')) throw new Error('tools/list answer without tools');
        serverWork.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      const cpu = process.cpuUsage(cpu0);
      // CPU time is not inflated by the scheduler of a loaded machine the way wall-clock percentiles are.
      const serverCpuMs = (cpu.user + cpu.system) / 1000 / 2000;
      const l = {
        list: summary(listRuns),
        ping: summary(pingRuns),
        sdk: summary(sdkRuns),
        plain: summary(plainRuns),
        leanList: summary(leanListRuns),
        leanPing: summary(leanPingRuns),
      };
      // Above the ping floor: what tools/list costs beyond any request on the same session (paired rounds).
      const overPingP99 = median(listRuns.map((r, i) => r.p99 - pingRuns[i].p99));
      const overPingP50 = median(listRuns.map((r, i) => r.p50 - pingRuns[i].p50));
      console.log(
        `\n(b) tools/list for a principal over ${OBJECTS + 1} objects: ${listed.tools.length} tools, ${fmt(listBytes / 1024)} KiB; 1 client, ${RUNS} rounds × ${SECONDS}s (median)`,
      );
      printTable([
        row('tools/list (raw JSON-RPC, node:http)', l.leanList),
        row('ping (raw JSON-RPC, node:http, floor)', l.leanPing),
        row('tools/list (raw JSON-RPC, fetch)', l.list),
        row('ping (raw JSON-RPC, fetch, floor)', l.ping),
        row('tools/list (SDK listTools)', l.sdk),
        row('tools/list (SDK listTools, plain fetch)', l.plain),
      ]);
      console.log(
        `abort listeners left on the transport's signal after the runs: ${listeners.scoped} (signal-scoped fetch), ${listeners.plain} (plain fetch, until a GC)`,
      );
      console.log(
        `tools/list above the ping floor (median of paired rounds): p50 ${fmt(overPingP50, 3)} ms, p99 ${fmt(overPingP99, 3)} ms`,
      );
      console.log(
        `server work per tools/list in process (auth, JSON-RPC parse, catalog, framing; 2,000 calls): p50 ${fmt(percentile(serverWork, 50), 3)} ms, p99 ${fmt(percentile(serverWork, 99), 3)} ms (wall); CPU per call ${fmt(serverCpuMs, 3)} ms`,
      );
      console.log(`cold (fresh credential), SDK listTools: median ${fmt(median(cold))} ms, max ${fmt(Math.max(...cold))} ms`);
      results.toolsList = {
        objects: OBJECTS + 1,
        tools: listed.tools.length,
        bytes: listBytes,
        raw: listRuns,
        ping: pingRuns,
        sdk: sdkRuns,
        sdkPlainFetch: plainRuns,
        rawNodeHttp: leanListRuns,
        pingNodeHttp: leanPingRuns,
        abortListeners: listeners,
        overPingP50,
        overPingP99,
        serverWorkP50: percentile(serverWork, 50),
        serverWorkP99: percentile(serverWork, 99),
        serverCpuMs,
        coldMs: cold,
      };
      targets.toolsListP99Ms = { value: l.leanList.p99, target: 5, met: l.leanList.p99 <= 5, fetchClientP99: l.list.p99 };
      targets.toolsListServerWorkP99Ms = { value: percentile(serverWork, 99), target: 5, met: percentile(serverWork, 99) <= 5 };
      failures += l.list.errors + l.ping.errors + l.sdk.errors + l.plain.errors + l.leanList.errors + l.leanPing.errors;
      await closeAll();
    }

    // (c) 200 sessions held open and used.
    if (PARTS.has('c')) {
      await closeAll();
      const before = memory();
      const held: Array<{ client: Client; transport: StreamableHTTPClientTransport }> = [];
      const opened = Date.now();
      for (let i = 0; i < SESSIONS; i += 20)
        held.push(...(await Promise.all(Array.from({ length: Math.min(20, SESSIONS - i) }, () => connect(repKey)))));
      const openSeconds = (Date.now() - opened) / 1000;
      const samples: Array<{ phase: string; heapMiB: number; rssMiB: number; seconds?: number }> = [
        { phase: 'before', ...before },
        { phase: `${SESSIONS} open`, ...memory() },
      ];
      let sessionErrors = 0;
      for (let c = 1; c <= CYCLES; c++) {
        const t0 = Date.now();
        // Every session is used each cycle, 20 at a time (bounded, so the cycle measures holding, not a stampede).
        for (let i = 0; i < held.length; i += 20) {
          await Promise.all(
            held.slice(i, i + 20).map(async ({ client }) => {
              try {
                await client.listTools();
                const r = (await client.callTool({ name: 'query_records', arguments: { object: 'deal', limit: 5 } })) as Json;
                if (r.isError) {
                  sessionErrors++;
                  noteError(JSON.stringify(r.structuredContent));
                }
              } catch (error) {
                sessionErrors++;
                noteError(error);
              }
            }),
          );
        }
        samples.push({ phase: `cycle ${c}`, ...memory(), seconds: (Date.now() - t0) / 1000 });
      }
      await closeAll();
      held.length = 0;
      samples.push({ phase: 'closed', ...memory() });
      const firstCycle = samples.find((s) => s.phase === 'cycle 1')!;
      const lastCycle = samples[samples.length - 2];
      const growth = lastCycle.heapMiB - firstCycle.heapMiB;
      const residue = samples[samples.length - 1].heapMiB - before.heapMiB;
      const flat = growth <= 8 && growth <= firstCycle.heapMiB * 0.1 && residue <= 16;
      console.log(
        `\n(c) ${SESSIONS} sessions held: opened in ${fmt(openSeconds)} s, ${CYCLES} cycles (each session: tools/list + query_records); ` +
          `memory of this process after a forced GC${(globalThis as { gc?: unknown }).gc ? '' : ' (no --expose-gc: GC not forced)'}`,
      );
      printTable(
        samples.map((s) => ({
          phase: s.phase,
          'heap MiB': fmt(s.heapMiB, 1),
          'rss MiB': fmt(s.rssMiB, 1),
          'cycle s': s.seconds === undefined ? '' : fmt(s.seconds),
        })),
      );
      console.log(
        `heap growth cycle 1 → ${CYCLES}: ${fmt(growth, 1)} MiB; after closing vs before: ${fmt(residue, 1)} MiB; errors ${sessionErrors}`,
      );
      results.sessions = {
        count: SESSIONS,
        cycles: CYCLES,
        openSeconds,
        samples,
        growthMiB: growth,
        residueMiB: residue,
        errors: sessionErrors,
      };
      targets.sessionsFlat = { growthMiB: growth, residueMiB: residue, met: flat };
      failures += sessionErrors;
    }

    // (d) 200 concurrent sessions opened, each calls a tool, all closed (DELETE) — repeated; heap after GC per round.
    if (PARTS.has('d')) {
      await closeAll();
      const rowsOut: Array<{ round: number; heapMiB: number; rssMiB: number; seconds: number; open: number }> = [];
      let churnErrors = 0;
      for (let r = 1; r <= CHURN_ROUNDS; r++) {
        const t0 = Date.now();
        const batch: Array<{ client: Client; transport: StreamableHTTPClientTransport }> = [];
        for (let i = 0; i < SESSIONS; i += 20)
          batch.push(...(await Promise.all(Array.from({ length: Math.min(20, SESSIONS - i) }, () => connect(repKey)))));
        const openNow = host.app.get(McpSessions).size();
        for (let i = 0; i < batch.length; i += 20) {
          await Promise.all(
            batch.slice(i, i + 20).map(async ({ client }) => {
              try {
                const res = (await client.callTool({ name: 'query_records', arguments: { object: 'deal', limit: 5 } })) as Json;
                if (res.isError) {
                  churnErrors++;
                  noteError(JSON.stringify(res.structuredContent));
                }
              } catch (error) {
                churnErrors++;
                noteError(error);
              }
            }),
          );
        }
        await closeAll();
        rowsOut.push({ round: r, ...memory(), seconds: (Date.now() - t0) / 1000, open: openNow });
      }
      const first = rowsOut[0].heapMiB;
      const last = rowsOut[rowsOut.length - 1].heapMiB;
      const churnFlat = last <= first * 1.1;
      console.log(
        `\n(d) ${SESSIONS} concurrent sessions per round (open, one query_records each, DELETE), ${CHURN_ROUNDS} rounds; heap after a forced GC`,
      );
      printTable(
        rowsOut.map((x) => ({
          round: x.round,
          'sessions open at peak': x.open,
          'heap MiB': fmt(x.heapMiB, 1),
          'rss MiB': fmt(x.rssMiB, 1),
          'round s': fmt(x.seconds),
        })),
      );
      console.log(
        `heap last round vs first: ${fmt(last - first, 1)} MiB (${fmt((100 * (last - first)) / first, 1)} %; flat = within +10 %); sessions open after: ${host.app.get(McpSessions).size()}; errors ${churnErrors}`,
      );
      results.churn = { sessions: SESSIONS, rounds: rowsOut, errors: churnErrors };
      targets.churnFlat = { firstMiB: first, lastMiB: last, met: churnFlat };
      failures += churnErrors;
    }

    console.log(
      `\ntargets: ${Object.entries(targets)
        .map(([k, v]) => `${k} ${v.value !== undefined ? fmt(v.value as number, 3) + ' ' : ''}${v.met ? 'met' : 'NOT met'}`)
        .join('; ')}`,
    );
    const file = writeResults('agent-gateway', { ...results, targets });
    console.log(`results → ${file}`);
    if (failures > 0) throw new Error(`calls failed during the benchmark: ${[...errorSamples].join(' | ')}`);
  } finally {
    await closeAll();
    await pool.end();
    await bench.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
