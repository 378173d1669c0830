import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  JSONRPCMessageSchema,
  ListToolsRequestSchema,
  type JSONRPCMessage,
  type MessageExtraInfo,
} from '@modelcontextprotocol/sdk/types.js';
import type { Request, Response } from 'express';
import { JsonHttpTransport, jsonRpcMessage, withSerializedJson } from './json-http-transport';

/** What the transport makes of one body item: the message, or the refusal (a 400 "Parse error"). */
function ours(value: unknown): { ok: true; message: unknown } | { ok: false } {
  try {
    return { ok: true, message: jsonRpcMessage(value) };
  } catch {
    return { ok: false };
  }
}

/**
 * The structural check accepts and refuses exactly what the SDK's JSONRPCMessageSchema does, and what it
 * accepts is the message the schema would give (the same JSON). Shapes near every edge of the check.
 */
const CASES: unknown[] = [
  { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} },
  { jsonrpc: '2.0', id: 1, method: 'tools/list' },
  { jsonrpc: '2.0', id: 'a', method: 'ping' },
  { jsonrpc: '2.0', id: '', method: '' },
  { jsonrpc: '2.0', id: 0, method: 'ping' },
  { jsonrpc: '2.0', id: -7, method: 'ping' },
  { jsonrpc: '2.0', id: 1.5, method: 'ping' },
  { jsonrpc: '2.0', id: 2 ** 60, method: 'ping' },
  { jsonrpc: '2.0', id: null, method: 'ping' },
  { jsonrpc: '2.0', id: true, method: 'ping' },
  { jsonrpc: '2.0', id: {}, method: 'ping' },
  { jsonrpc: '2.0', id: [], method: 'ping' },
  { jsonrpc: '1.0', id: 1, method: 'ping' },
  { id: 1, method: 'ping' },
  { jsonrpc: 2, id: 1, method: 'ping' },
  { jsonrpc: '2.0', id: 1 },
  { jsonrpc: '2.0', id: 1, method: 3 },
  { jsonrpc: '2.0', id: 1, method: null },
  { jsonrpc: '2.0', id: 1, method: 'ping', params: null },
  { jsonrpc: '2.0', id: 1, method: 'ping', params: [] },
  { jsonrpc: '2.0', id: 1, method: 'ping', params: 'x' },
  { jsonrpc: '2.0', id: 1, method: 'ping', params: 3 },
  { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'query_records', arguments: { object: 'deal', limit: 5 } } },
  { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x', _meta: { progressToken: 'p' } } },
  { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x', _meta: { progressToken: {} } } },
  { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x', _meta: null } },
  { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x', _meta: 'm' } },
  { jsonrpc: '2.0', id: 1, method: 'ping', extra: 1 },
  { jsonrpc: '2.0', id: 1, method: 'ping', result: {} },
  { jsonrpc: '2.0', id: 1, method: 'ping', error: { code: 1, message: 'm' } },
  JSON.parse('{"jsonrpc":"2.0","id":1,"method":"ping","__proto__":{"x":1}}'),
  JSON.parse('{"jsonrpc":"2.0","id":1,"method":"ping","params":{"__proto__":{"x":1}}}'),
  { jsonrpc: '2.0', method: 'notifications/initialized' },
  { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1, reason: 'r' } },
  { jsonrpc: '2.0', method: 'notifications/initialized', params: null },
  { jsonrpc: '2.0', method: 'notifications/initialized', extra: true },
  { jsonrpc: '2.0', method: 'notifications/progress', params: { _meta: {} } },
  { jsonrpc: '2.0', id: 1, result: {} },
  { jsonrpc: '2.0', id: 1, result: { _meta: { a: 1 }, x: [1] } },
  { jsonrpc: '2.0', id: 1, result: [] },
  { jsonrpc: '2.0', id: 1, result: {}, extra: 1 },
  { jsonrpc: '2.0', id: 1, error: { code: -32601, message: 'nope', data: { a: 1 } } },
  { jsonrpc: '2.0', error: { code: -32601, message: 'nope' } },
  { jsonrpc: '2.0', id: 1, error: { code: 1.5, message: 'nope' } },
  { jsonrpc: '2.0', id: 1, error: { code: 1, message: 'nope', extra: 1 } },
  { jsonrpc: '2.0', id: 1, error: { code: 1 } },
  { jsonrpc: '2.0', id: 1, initialize: true },
  {
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'c', version: '1' } },
  },
  {},
  [],
  [{ jsonrpc: '2.0', id: 1, method: 'ping' }],
  null,
  undefined,
  'ping',
  42,
  true,
];

describe('jsonRpcMessage (the transport’s JSON-RPC check)', () => {
  it.each(CASES.map((c) => [JSON.stringify(c) ?? String(c), c]))('agrees with JSONRPCMessageSchema: %s', (_name, value) => {
    const schema = JSONRPCMessageSchema.safeParse(value);
    const result = ours(value);
    expect(result.ok).toBe(schema.success);
    if (result.ok && schema.success) expect(JSON.stringify(result.message)).toBe(JSON.stringify(schema.data));
  });

  it('passes the usual request on as it is (the SDK parses it again with its method’s schema)', () => {
    const request = { jsonrpc: '2.0', id: 3, method: 'tools/list', params: {} };
    expect(jsonRpcMessage(request)).toBe(request);
  });
});

/** The parts of an Express response the transport uses, recording what was written. */
function fakeResponse(): { res: Response; done: Promise<{ status: number; headers: Record<string, string>; body: string }> } {
  let finish: (value: { status: number; headers: Record<string, string>; body: string }) => void = () => undefined;
  const done = new Promise<{ status: number; headers: Record<string, string>; body: string }>((resolve) => (finish = resolve));
  const chunks: Buffer[] = [];
  let status = 0;
  let headers: Record<string, string> = {};
  const res = {
    headersSent: false,
    writableEnded: false,
    destroyed: false,
    writeHead(code: number, h: Record<string, string>) {
      status = code;
      headers = h;
      res.headersSent = true;
      return res;
    },
    cork: () => undefined,
    write(chunk: string | Buffer) {
      chunks.push(Buffer.from(chunk));
      return true;
    },
    end(chunk?: string | Buffer) {
      if (chunk !== undefined) chunks.push(Buffer.from(chunk));
      res.writableEnded = true;
      finish({ status, headers, body: Buffer.concat(chunks).toString('utf8') });
      return res;
    },
    on: () => res,
    status(code: number) {
      status = code;
      return res;
    },
    json(body: unknown) {
      return res.end(JSON.stringify(body));
    },
  };
  return { res: res as unknown as Response, done };
}

const post = (body: unknown) =>
  ({
    headers: { accept: 'application/json, text/event-stream', 'content-type': 'application/json' },
    url: '/mcp',
    originalUrl: '/mcp',
    body,
  }) as unknown as Request;

describe('JsonHttpTransport answers', () => {
  async function connected(): Promise<{ server: Server; transport: JsonHttpTransport; routed: jest.Mock }> {
    const server = new Server({ name: 't', version: '1' }, { capabilities: { tools: {} } });
    const list = { tools: [{ name: 'ü_tool', inputSchema: { type: 'object' } }] };
    server.setRequestHandler(ListToolsRequestSchema, () => withSerializedJson(list, Buffer.from(JSON.stringify(list))) as never);
    const transport = new JsonHttpTransport(undefined);
    await server.connect(transport);
    // Counts what goes through the SDK's own message routing (its zod checks).
    const sdkRoute = transport.onmessage!;
    const routed = jest.fn((message: JSONRPCMessage, extra?: MessageExtraInfo) => sdkRoute(message, extra));
    transport.onmessage = routed;
    return { server, transport, routed };
  }

  it('hands requests to the server’s dispatch (the SDK still has it) and frames a cached answer with its exact length', async () => {
    const { server, transport, routed } = await connected();
    transport.dispatchRequestsTo(server);
    const { res, done } = fakeResponse();
    await transport.handlePost(post(undefined), res, { jsonrpc: '2.0', id: 'ä', method: 'tools/list', params: {} }, undefined);
    const answer = await done;
    expect(routed).not.toHaveBeenCalled();
    expect(answer.status).toBe(200);
    expect(answer.body).toBe('{"result":{"tools":[{"name":"ü_tool","inputSchema":{"type":"object"}}]},"jsonrpc":"2.0","id":"ä"}');
    expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.body));
    await server.close();
  });

  it('without the dispatch, routes through the SDK as before, with the same answer', async () => {
    const { server, transport, routed } = await connected();
    const { res, done } = fakeResponse();
    await transport.handlePost(post(undefined), res, { jsonrpc: '2.0', id: 7, method: 'ping' }, undefined);
    const answer = await done;
    expect(routed).toHaveBeenCalledTimes(1);
    expect(answer.body).toBe('{"result":{},"jsonrpc":"2.0","id":7}');
    expect(Number(answer.headers['content-length'])).toBe(answer.body.length);
    await server.close();
  });

  it('answers a batch in request order', async () => {
    const { server, transport } = await connected();
    transport.dispatchRequestsTo(server);
    const { res, done } = fakeResponse();
    await transport.handlePost(
      post(undefined),
      res,
      [
        { jsonrpc: '2.0', id: 1, method: 'tools/list' },
        { jsonrpc: '2.0', id: 2, method: 'ping' },
      ],
      undefined,
    );
    const answer = await done;
    expect(JSON.parse(answer.body)).toEqual([
      { result: { tools: [{ name: 'ü_tool', inputSchema: { type: 'object' } }] }, jsonrpc: '2.0', id: 1 },
      { result: {}, jsonrpc: '2.0', id: 2 },
    ]);
    expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.body));
    await server.close();
  });
});
