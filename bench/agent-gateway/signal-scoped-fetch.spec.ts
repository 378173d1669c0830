import { getEventListeners } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { signalScopedFetch } from './signal-scoped-fetch';

/** A JSON-RPC endpoint answering every POST with a result, and GET with an event stream held open. */
function server(): Promise<Server> {
  const srv = createServer((req, res) => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': open\n\n');
      return;
    }
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const { id } = JSON.parse(body) as { id: number };
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 's1' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id, result: {} }));
    });
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

/** The transport's own long-lived signal, the one it hands to every request. */
function transportSignal(transport: StreamableHTTPClientTransport): AbortSignal {
  return (transport as unknown as { _abortController: AbortController })._abortController.signal;
}

describe('signalScopedFetch', () => {
  let srv: Server;
  let url: URL;
  beforeAll(async () => {
    srv = await server();
    url = new URL(`http://127.0.0.1:${(srv.address() as AddressInfo).port}/mcp`);
  });
  afterAll(async () => {
    srv.closeAllConnections();
    await new Promise((resolve) => srv.close(resolve));
  });

  it('leaves no abort listener on the transport’s long-lived signal after its requests answered', async () => {
    const transport = new StreamableHTTPClientTransport(url, { fetch: signalScopedFetch() });
    const answered: unknown[] = [];
    transport.onmessage = (message) => answered.push(message);
    await transport.start();
    const signal = transportSignal(transport);
    for (let id = 1; id <= 300; id++) await transport.send({ jsonrpc: '2.0', id, method: 'ping' });
    expect(answered).toHaveLength(300);
    // Plain fetch leaves one per request here until a garbage collection (hundreds after 300 requests).
    expect(getEventListeners(signal, 'abort').length).toBe(0);
    await transport.close();
  });

  it('still aborts a request in flight, and an open body, when the caller’s signal fires', async () => {
    const scoped = signalScopedFetch();
    const caller = new AbortController();
    const res = await scoped(url, { method: 'GET', signal: caller.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(1);
    caller.abort(new Error('closed'));
    await expect(reader.read().then(() => reader.read())).rejects.toThrow();
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);

    const aborted = new AbortController();
    aborted.abort(new Error('already closed'));
    await expect(scoped(url, { method: 'POST', body: '{"id":1}', signal: aborted.signal })).rejects.toThrow();
  });

  it('unlinks when the body is cancelled or the request fails', async () => {
    const scoped = signalScopedFetch();
    const caller = new AbortController();
    const res = await scoped(url, { method: 'GET', signal: caller.signal });
    await res.body!.cancel();
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
    const failing = signalScopedFetch(() => Promise.reject(new Error('refused')));
    await expect(failing(url, { signal: caller.signal })).rejects.toThrow('refused');
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });
});
