import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import { isJsonContentType } from '@modelcontextprotocol/sdk/shared/mediaType.js';
import {
  isInitializeRequest,
  isJSONRPCErrorResponse,
  isJSONRPCResultResponse,
  JSONRPCMessageSchema,
  SUPPORTED_PROTOCOL_VERSIONS,
  type JSONRPCMessage,
  type MessageExtraInfo,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import type { Request, Response } from 'express';

/** Most JSON-RPC messages in one batch (the SDK's own transport refuses more, too). */
const MAX_BATCH = 100;
/** A comment line on an idle event stream, so proxies do not cut it (the SDK's default period). */
const KEEP_ALIVE_MS = 15_000;

/**
 * Answers a request handler returned whose JSON is already known (the cached tools/list of a
 * catalog entry, as UTF-8 bytes): the response is written around those bytes instead of serializing
 * the answer again or copying it into a string per request.
 */
const serialized = new WeakMap<object, Buffer>();
export function withSerializedJson<T extends object>(result: T, json: Buffer): T {
  serialized.set(result, json);
  return result;
}

interface Exchange {
  ids: RequestId[];
  /** The answers of a batch, once more than one is expected (a single request needs none). */
  answers: Map<RequestId, JSONRPCMessage> | undefined;
  res: Response;
}

/**
 * MCP Streamable HTTP on the Express request and response, answering every POST with one JSON
 * body (the transport's "JSON response" mode, which the spec allows and every SDK client reads)
 * and holding the session's GET event stream for server notifications (`list_changed`).
 *
 * It replaces the SDK's `StreamableHTTPServerTransport` on the hot path: that one converts each
 * Node request into a web `Request`, answers through a web `Response` and a `ReadableStream` of
 * server-sent events, and builds a new listener per request — several times the cost of the tool
 * call it carries (profiled, docs/agent-gateway.md §Performance). The protocol checks are the
 * same: Accept and Content-Type, JSON-RPC shape and batch size, one initialize per session,
 * protocol version header, one GET stream per session, DELETE ends the session. Session lookup,
 * authentication and the Origin check happen in the controller before a request gets here.
 *
 * Without a session id the transport serves exactly one POST (stateless mode).
 */
export class JsonHttpTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage, extra?: MessageExtraInfo) => void;
  private readonly exchanges = new Map<RequestId, Exchange>();
  private stream: { res: Response; timer: NodeJS.Timeout } | undefined;
  private initialized = false;
  private closed = false;
  /** The connected Protocol's own request dispatch, when `dispatchRequestsTo` found it. */
  private dispatchRequest: ((request: JSONRPCMessage, extra: MessageExtraInfo) => void) | undefined;

  constructor(
    readonly sessionId: string | undefined,
    private readonly onSessionClosed?: () => void | Promise<void>,
  ) {}

  async start(): Promise<void> {}

  /**
   * Hands requests straight to the connected server's request dispatch. The SDK's Protocol routes
   * each incoming message by trying its result, error and request schemas in turn (three zod parses,
   * the first two failing with issue lists, per request); a message this transport has checked is
   * already known to be a request, and the dispatch parses it again with its method's own schema
   * before the handler runs. Call after `server.connect(transport)`. An SDK without that dispatch
   * keeps the usual route through `onmessage`; responses and notifications always take it.
   */
  dispatchRequestsTo(server: Server): void {
    const dispatch = (server as unknown as { _onrequest?: unknown })._onrequest;
    if (typeof dispatch !== 'function') return;
    this.dispatchRequest = (dispatch as (request: JSONRPCMessage, extra: MessageExtraInfo) => void).bind(server);
  }

  private deliver(message: JSONRPCMessage, extra: MessageExtraInfo): void {
    if (this.dispatchRequest !== undefined && isRequest(message)) this.dispatchRequest(message, extra);
    else this.onmessage?.(message, extra);
  }

  isClosed(): boolean {
    return this.closed;
  }

  async handlePost(req: Request, res: Response, body: unknown, authInfo: AuthInfo | undefined): Promise<void> {
    const accept = req.headers.accept ?? '';
    if (!accept.includes('application/json') || !accept.includes('text/event-stream'))
      return rpcError(res, 406, -32000, 'Not Acceptable: Client must accept both application/json and text/event-stream');
    if (!isJsonContentType(req.headers['content-type']))
      return rpcError(res, 415, -32000, 'Unsupported Media Type: Content-Type must be application/json');
    if (Array.isArray(body) && body.length > MAX_BATCH)
      return rpcError(res, 400, -32600, `Invalid Request: Batch must not exceed ${MAX_BATCH} messages`);
    const items: unknown[] = Array.isArray(body) ? body : [body];
    const messages: JSONRPCMessage[] = [];
    const ids: RequestId[] = [];
    try {
      for (const item of items) {
        const message = jsonRpcMessage(item);
        messages.push(message);
        if (isRequest(message)) ids.push(message.id);
      }
    } catch {
      return rpcError(res, 400, -32700, 'Parse error: Invalid JSON-RPC message');
    }
    if (this.closed) return rpcError(res, 404, -32001, 'Session not found');
    // Only a message whose method is "initialize" can be an initialize request.
    const initializing = messages.some((m) => 'method' in m && m.method === 'initialize' && isInitializeRequest(m));
    if (initializing) {
      if (this.initialized && this.sessionId !== undefined)
        return rpcError(res, 400, -32600, 'Invalid Request: Server already initialized');
      if (messages.length > 1) return rpcError(res, 400, -32600, 'Invalid Request: Only one initialization request is allowed');
      this.initialized = true;
    } else {
      if (this.sessionId !== undefined && !this.initialized) return rpcError(res, 400, -32000, 'Bad Request: Server not initialized');
      const version = protocolError(req);
      if (version) return rpcError(res, 400, -32000, version);
    }
    const extra: MessageExtraInfo = { authInfo, requestInfo: new LazyRequestInfo(req) };
    if (ids.length === 0) {
      for (const message of messages) this.deliver(message, extra);
      res.status(202).end();
      return;
    }
    const exchange: Exchange = { ids, answers: ids.length > 1 ? new Map() : undefined, res };
    for (const id of ids) this.exchanges.set(id, exchange);
    // A client that goes away before its answer leaves nothing behind.
    res.on('close', () => {
      for (const id of exchange.ids) if (this.exchanges.get(id) === exchange) this.exchanges.delete(id);
    });
    for (const message of messages) this.deliver(message, extra);
  }

  handleGet(req: Request, res: Response): void {
    if (!(req.headers.accept ?? '').includes('text/event-stream'))
      return rpcError(res, 406, -32000, 'Not Acceptable: Client must accept text/event-stream');
    const version = protocolError(req);
    if (version) return rpcError(res, 400, -32000, version);
    if (this.closed) return rpcError(res, 404, -32001, 'Session not found');
    if (this.stream) return rpcError(res, 409, -32000, 'Conflict: Only one SSE stream is allowed per session');
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      ...(this.sessionId ? { 'mcp-session-id': this.sessionId } : {}),
    });
    res.flushHeaders();
    const timer = setInterval(() => res.write(': keepalive\n\n'), KEEP_ALIVE_MS);
    timer.unref();
    const stream = { res, timer };
    this.stream = stream;
    res.on('close', () => {
      clearInterval(timer);
      if (this.stream === stream) this.stream = undefined;
    });
  }

  async handleDelete(req: Request, res: Response): Promise<void> {
    const version = protocolError(req);
    if (version) return rpcError(res, 400, -32000, version);
    try {
      await this.onSessionClosed?.();
      res.status(200).end();
    } finally {
      await this.close();
    }
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (isResponse(message)) {
      if (message.id === undefined) return;
      const exchange = this.exchanges.get(message.id);
      // Its client went away (or the session closed): nobody to answer.
      if (!exchange) return;
      const { answers, ids, res } = exchange;
      if (answers) {
        answers.set(message.id, message);
        if (answers.size < ids.length) return;
      }
      for (const id of ids) this.exchanges.delete(id);
      if (res.writableEnded || res.destroyed) return;
      if (!answers) return this.answer(res, message);
      const text = `[${ids.map((id) => encode(answers.get(id)!)).join(',')}]`;
      res.writeHead(200, this.headers(Buffer.byteLength(text)));
      res.end(text);
      return;
    }
    // A message about one request (progress, logging) has no stream to go on in JSON mode.
    if (options?.relatedRequestId !== undefined) return;
    const stream = this.stream;
    if (stream && !stream.res.writableEnded) stream.res.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
  }

  /** One answer: a known serialized result goes out as its cached bytes between two short pieces. */
  private answer(res: Response, message: JSONRPCMessage): void {
    const known = 'result' in message ? serialized.get(message.result) : undefined;
    if (known === undefined) {
      const text = JSON.stringify(message);
      res.writeHead(200, this.headers(Buffer.byteLength(text)));
      res.end(text);
      return;
    }
    // The same bytes `encode` would give: {"result":…,"jsonrpc":"2.0","id":…}.
    const tail = `,"jsonrpc":"2.0","id":${JSON.stringify((message as { id: RequestId }).id)}}`;
    res.writeHead(200, this.headers(RESULT_HEAD.length + known.length + Buffer.byteLength(tail)));
    // One write to the socket for the three pieces (end uncorks).
    res.cork();
    res.write(RESULT_HEAD);
    res.write(known);
    res.end(tail);
  }

  private headers(length: number): Record<string, string> {
    return this.sessionId
      ? { 'content-type': 'application/json', 'content-length': String(length), 'mcp-session-id': this.sessionId }
      : { 'content-type': 'application/json', 'content-length': String(length) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.stream) {
      clearInterval(this.stream.timer);
      this.stream.res.end();
      this.stream = undefined;
    }
    for (const exchange of new Set(this.exchanges.values())) {
      if (!exchange.res.headersSent) rpcError(exchange.res, 404, -32001, 'Session not found');
    }
    this.exchanges.clear();
    this.onclose?.();
  }
}

const RESULT_HEAD = Buffer.from('{"result":');

/** One answer of a batch as JSON text. */
function encode(message: JSONRPCMessage): string {
  if ('result' in message) {
    const known = serialized.get(message.result);
    if (known !== undefined) return `{"result":${known.toString('utf8')},"jsonrpc":"2.0","id":${JSON.stringify(message.id)}}`;
  }
  return JSON.stringify(message);
}

/** The SDK's request info (headers, URL), its URL only built if someone reads it (nothing on the usual path does). */
class LazyRequestInfo {
  private parsed: URL | undefined;
  readonly headers: Request['headers'];

  constructor(private readonly req: Request) {
    this.headers = req.headers;
  }

  get url(): URL {
    this.parsed ??= new URL(this.req.originalUrl ?? this.req.url, 'http://localhost');
    return this.parsed;
  }
}

const REQUEST_KEYS = new Set(['jsonrpc', 'id', 'method', 'params']);
const NOTIFICATION_KEYS = new Set(['jsonrpc', 'method', 'params']);

/**
 * One item of a POST body as a JSON-RPC message, accepted and refused exactly as the SDK's
 * `JSONRPCMessageSchema` does (it throws on what that schema refuses). The usual shapes — a request
 * or a notification whose params carry no `_meta` — are checked here without zod: only the keys of
 * the shape, `jsonrpc` "2.0", an id that is a string or a safe integer, a string method, params
 * absent or an object. They pass on as they are, which is what the schema would give for them: the
 * SDK parses every request and notification again with its method's own schema before a handler
 * sees it. Anything else (responses, `_meta`, unusual ids, a `__proto__` key the schema would strip,
 * anything the check does not accept) goes through the schema as before.
 */
export function jsonRpcMessage(value: unknown): JSONRPCMessage {
  return plainMessage(value) ? value : JSONRPCMessageSchema.parse(value);
}

function plainMessage(value: unknown): value is JSONRPCMessage {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const m = value as Record<string, unknown>;
  if (m.jsonrpc !== '2.0' || typeof m.method !== 'string') return false;
  const id = m.id;
  if (id !== undefined && typeof id !== 'string' && !Number.isSafeInteger(id)) return false;
  const params = m.params;
  if (params !== undefined) {
    if (typeof params !== 'object' || params === null || Array.isArray(params)) return false;
    if ((params as Record<string, unknown>)._meta !== undefined || Object.hasOwn(params, '__proto__')) return false;
  }
  const keys = id === undefined ? NOTIFICATION_KEYS : REQUEST_KEYS;
  for (const key in m) if (!keys.has(key)) return false;
  return true;
}

/** A request (it has a method and an id); the message has passed `jsonRpcMessage`. */
function isRequest(message: JSONRPCMessage): message is JSONRPCMessage & { id: RequestId; method: string } {
  return 'method' in message && 'id' in message && message.id !== undefined;
}

/**
 * A result or error answer among what the SDK's Protocol sends (answers it builds itself, as
 * `{ result, jsonrpc, id }` or `{ jsonrpc, id, error }`; requests and notifications carry a method).
 * The usual shapes are told by their keys; anything else is checked with the SDK's schemas as before.
 */
function isResponse(message: JSONRPCMessage): message is JSONRPCMessage & { id: RequestId | undefined } {
  const m = message as Record<string, unknown>;
  if (m.method === undefined && m.jsonrpc === '2.0' && (typeof m.id === 'string' || Number.isSafeInteger(m.id))) {
    const result = m.result;
    if (
      typeof result === 'object' &&
      result !== null &&
      !Array.isArray(result) &&
      (result as Record<string, unknown>)._meta === undefined &&
      m.error === undefined &&
      Object.keys(m).length === 3
    )
      return true;
  }
  return isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message);
}

function protocolError(req: Request): string | undefined {
  const version = req.headers['mcp-protocol-version'];
  if (version === undefined) return undefined;
  if (typeof version === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(version)) return undefined;
  return `Bad Request: Unsupported protocol version: ${String(version).slice(0, 32)} (supported versions: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`;
}

export function rpcError(res: Response, status: number, code: number, message: string, data?: Record<string, unknown>): void {
  res.status(status).json({ jsonrpc: '2.0', error: { code, message, ...(data ? { data } : {}) }, id: null });
}
