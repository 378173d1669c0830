import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import { isJsonContentType } from '@modelcontextprotocol/sdk/shared/mediaType.js';
import {
  isInitializeRequest,
  isJSONRPCErrorResponse,
  isJSONRPCRequest,
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
 * catalog entry): the response is assembled around it instead of serializing it again.
 */
const serialized = new WeakMap<object, string>();
export function withSerializedJson<T extends object>(result: T, json: string): T {
  serialized.set(result, json);
  return result;
}

interface Exchange {
  ids: RequestId[];
  answers: Map<RequestId, JSONRPCMessage>;
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

  constructor(
    readonly sessionId: string | undefined,
    private readonly onSessionClosed?: () => void | Promise<void>,
  ) {}

  async start(): Promise<void> {}

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
    let messages: JSONRPCMessage[];
    try {
      messages = (Array.isArray(body) ? body : [body]).map((m) => JSONRPCMessageSchema.parse(m));
    } catch {
      return rpcError(res, 400, -32700, 'Parse error: Invalid JSON-RPC message');
    }
    if (this.closed) return rpcError(res, 404, -32001, 'Session not found');
    const initializing = messages.some((m) => isInitializeRequest(m));
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
    const requestInfo = { headers: req.headers, url: new URL(req.originalUrl ?? req.url, 'http://localhost') };
    const requests = messages.filter((m) => isJSONRPCRequest(m));
    if (requests.length === 0) {
      for (const message of messages) this.onmessage?.(message, { authInfo, requestInfo });
      res.status(202).end();
      return;
    }
    const exchange: Exchange = { ids: requests.map((m) => m.id), answers: new Map(), res };
    for (const id of exchange.ids) this.exchanges.set(id, exchange);
    // A client that goes away before its answer leaves nothing behind.
    res.on('close', () => {
      for (const id of exchange.ids) if (this.exchanges.get(id) === exchange) this.exchanges.delete(id);
    });
    for (const message of messages) this.onmessage?.(message, { authInfo, requestInfo });
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
    if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
      if (message.id === undefined) return;
      const exchange = this.exchanges.get(message.id);
      // Its client went away (or the session closed): nobody to answer.
      if (!exchange) return;
      exchange.answers.set(message.id, message);
      if (exchange.answers.size < exchange.ids.length) return;
      for (const id of exchange.ids) this.exchanges.delete(id);
      const parts = exchange.ids.map((id) => encode(exchange.answers.get(id)!));
      const text = parts.length === 1 ? parts[0] : `[${parts.join(',')}]`;
      if (exchange.res.writableEnded || exchange.res.destroyed) return;
      exchange.res.writeHead(200, {
        'content-type': 'application/json',
        ...(this.sessionId ? { 'mcp-session-id': this.sessionId } : {}),
      });
      exchange.res.end(text);
      return;
    }
    // A message about one request (progress, logging) has no stream to go on in JSON mode.
    if (options?.relatedRequestId !== undefined) return;
    const stream = this.stream;
    if (stream && !stream.res.writableEnded) stream.res.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
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

function encode(message: JSONRPCMessage): string {
  if (isJSONRPCResultResponse(message)) {
    const known = serialized.get(message.result);
    if (known !== undefined) return `{"result":${known},"jsonrpc":"2.0","id":${JSON.stringify(message.id)}}`;
  }
  return JSON.stringify(message);
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
