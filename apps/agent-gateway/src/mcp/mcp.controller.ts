import { Controller, Delete, Get, Inject, Post, Req, Res } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { CONFIG, LOGGER, Public, requestContext, type CustodianConfig, ApiContract, AnyObject } from '@custodian/platform';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { McpAuthenticator, McpAuthError } from '../auth/mcp-authenticator';
import { rpcError } from './json-http-transport';
import { McpSessions, type McpSession } from './mcp-sessions.service';

type McpRequest = Request & { auth?: AuthInfo };

/** The handlers' view of a principal, built once per snapshot object (the resolver reuses it while cached). */
const authInfos = new WeakMap<PrincipalSnapshot, AuthInfo>();

/**
 * `/mcp`, MCP Streamable HTTP. Public to the global guard because it authenticates by itself: its
 * tokens carry the MCP audience the REST guard refuses, and a refusal must carry the RFC 9728
 * challenge. Every request (POST, the GET event stream, DELETE) is authenticated, and a session is
 * only usable by the credential that opened it.
 */
@Controller('mcp')
export class McpController {
  constructor(
    @Inject(McpAuthenticator) private readonly auth: McpAuthenticator,
    @Inject(McpSessions) private readonly sessions: McpSessions,
    @Inject(CONFIG) private readonly config: CustodianConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  @Public()
  @ApiContract({
    summary: 'MCP Streamable HTTP: JSON-RPC requests of an MCP client (authenticates itself: RFC 9728 challenge)',
    body: AnyObject,
    responses: { 200: AnyObject, 202: null },
    problems: ['unauthenticated', 'forbidden'],
  })
  @Post()
  async post(@Req() req: McpRequest, @Res() res: Response): Promise<void> {
    if (!this.originAllowed(req)) return rpcError(res, 403, -32000, 'Origin not allowed');
    const size = Number(req.headers['content-length'] ?? Buffer.byteLength(JSON.stringify(req.body ?? null)));
    if (size > this.config.agentGateway.maxBodyBytes) {
      return rpcError(res, 413, -32600, `Request body too large (at most ${this.config.agentGateway.maxBodyBytes} bytes)`);
    }
    const principal = await this.authenticate(req, res);
    if (!principal) return;
    if (this.config.agentGateway.stateless) {
      this.attach(req, principal);
      return this.sessions.serveStateless(principal, req, res, req.body);
    }
    const sessionId = sessionHeader(req);
    if (sessionId !== undefined) {
      const session = this.sessions.get(sessionId, principal);
      if (!session) return rpcError(res, 404, -32001, 'Session not found');
      return this.forward(session, principal, req, res, req.body);
    }
    if (!isInitializeRequest(req.body)) return rpcError(res, 400, -32000, 'Bad Request: no valid session; send initialize first');
    const wait = this.sessions.admit(principal);
    if (wait > 0) {
      await this.sessions.refused(principal, 'session_cap');
      res.setHeader('Retry-After', String(wait));
      return rpcError(res, 429, -32000, `Too many open MCP sessions for this credential; retry after ${wait} s or close one`, {
        retryAfterSeconds: wait,
      });
    }
    const params = req.body.params;
    const session = await this.sessions.open(principal, {
      name: params.clientInfo?.name,
      version: params.clientInfo?.version,
      protocolVersion: params.protocolVersion,
    });
    return this.forward(session, principal, req, res, req.body);
  }

  @Public()
  @ApiContract({
    summary: 'MCP Streamable HTTP: the server-to-client event stream of a session',
    responses: { 200: { contentType: 'text/event-stream' } },
    problems: ['unauthenticated', 'forbidden', 'not_found'],
  })
  @Get()
  async stream(@Req() req: McpRequest, @Res() res: Response): Promise<void> {
    return this.withSession(req, res);
  }

  @Public()
  @ApiContract({
    summary: 'MCP Streamable HTTP: ends a session',
    responses: { 200: null, 204: null },
    problems: ['unauthenticated', 'forbidden', 'not_found'],
  })
  @Delete()
  async close(@Req() req: McpRequest, @Res() res: Response): Promise<void> {
    return this.withSession(req, res);
  }

  private async withSession(req: McpRequest, res: Response): Promise<void> {
    if (!this.originAllowed(req)) return rpcError(res, 403, -32000, 'Origin not allowed');
    if (this.config.agentGateway.stateless) {
      // No sessions: no event stream to hold and nothing to end.
      res.setHeader('Allow', 'POST');
      return rpcError(res, 405, -32000, 'Method not allowed: this server is stateless (POST only)');
    }
    const principal = await this.authenticate(req, res);
    if (!principal) return;
    const sessionId = sessionHeader(req);
    if (sessionId === undefined) return rpcError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
    const session = this.sessions.get(sessionId, principal);
    if (!session) return rpcError(res, 404, -32001, 'Session not found');
    return this.forward(session, principal, req, res);
  }

  /**
   * A browser page of another site must not drive /mcp (DNS rebinding, MCP transport security): a
   * request that names an Origin must name this installation's public origin or a loopback one.
   * Clients that are not browsers send no Origin.
   */
  private originAllowed(req: Request): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      return false;
    }
    if (parsed.origin === new URL(this.config.agentGateway.publicUrl).origin) return true;
    return ['localhost', '127.0.0.1', '[::1]'].includes(parsed.hostname);
  }

  /** The handlers see the principal of this request, never the bearer itself. */
  private attach(req: McpRequest, principal: PrincipalSnapshot): void {
    let auth = authInfos.get(principal);
    if (!auth) {
      auth = Object.freeze({
        token: '',
        clientId: principal.agent?.clientId ?? 'api-key',
        scopes: Object.freeze([...(principal.agent?.scopes ?? [])]) as string[],
        extra: Object.freeze({ principal }),
      });
      authInfos.set(principal, auth);
    }
    req.auth = auth;
  }

  private async forward(session: McpSession, principal: PrincipalSnapshot, req: McpRequest, res: Response, body?: unknown): Promise<void> {
    this.attach(req, principal);
    if (req.method === 'POST') return session.transport.handlePost(req, res, body, req.auth);
    if (req.method === 'GET') return session.transport.handleGet(req, res);
    return session.transport.handleDelete(req, res);
  }

  private async authenticate(req: Request, res: Response): Promise<PrincipalSnapshot | undefined> {
    try {
      const principal = await this.auth.authenticate(req.headers.authorization);
      const ctx = requestContext.current();
      if (ctx) ctx.principal = principal;
      return principal;
    } catch (error) {
      if (!(error instanceof McpAuthError)) throw error;
      this.logger.info({ reason: error.reason }, 'mcp request refused');
      res.setHeader('WWW-Authenticate', this.auth.challenge(error.reason === 'no_bearer' ? 'missing' : 'invalid'));
      res.status(401).type('application/problem+json').json({
        type: 'about:blank',
        title: 'Authentication required',
        status: 401,
        code: 'unauthenticated',
        detail: 'A delegated agent token for this MCP resource, or an API key with mcp_access, is required',
        requestId: requestContext.requestId(),
      });
      return undefined;
    }
  }
}

function sessionHeader(req: Request): string | undefined {
  const value = req.headers['mcp-session-id'];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}
