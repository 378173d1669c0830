import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { GetPrincipalSnapshot, PolicyVersionChanged, type PrincipalSnapshot } from '@custodian/contracts';
import { BUS, CONFIG, LOGGER, type Bus, type CustodianConfig } from '@custodian/platform';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { GatewayAudit } from '../audit/gateway-audit.service';
import { credentialKey } from '../tools/credential-key';
import { ToolCatalogService } from '../tools/tool-catalog.service';
import { JsonHttpTransport } from './json-http-transport';
import { McpHandlers, type HandlerSession } from './mcp-handlers';

export interface McpSession extends HandlerSession {
  readonly server: Server;
  readonly transport: JsonHttpTransport;
  /** The credential that opened the session; only it may use the session. */
  readonly credential: string;
  /** The principal of the latest request (a refreshed token may carry a newer policy version). */
  principal: PrincipalSnapshot;
  lastUsed: number;
  ended: boolean;
  /** The highest policy version this session's lists were checked against. */
  checkedVersion: number;
}

export type EndReason = 'client' | 'idle' | 'shutdown';

/**
 * The open MCP sessions of this process. A session is bound to the credential that opened it (a
 * request with another credential gets "session not found"), counted against that credential's cap,
 * closed after an idle period, and told `tools/list_changed` when its org's policy version moves.
 * Sessions live in this process's memory: behind a load balancer, route by `Mcp-Session-Id`.
 */
@Injectable()
export class McpSessions implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly sessions = new Map<string, McpSession>();
  /** Per org, the policy-change checks in order (each waits for the previous one). */
  private readonly checks = new Map<string, Promise<void>>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(CONFIG) private readonly config: CustodianConfig,
    @Inject(McpHandlers) private readonly handlers: McpHandlers,
    @Inject(ToolCatalogService) private readonly catalog: ToolCatalogService,
    @Inject(GatewayAudit) private readonly audit: GatewayAudit,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.bus.listen(PolicyVersionChanged, (event) => this.policyChanged(event.orgId, event.policyVersion));
    const every = Math.min(60_000, Math.max(250, Math.floor(this.config.agentGateway.sessionIdleMs / 2)));
    this.sweeper = setInterval(() => this.sweep(), every);
    this.sweeper.unref();
  }

  async onModuleDestroy(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    await Promise.all([...this.sessions.values()].map((s) => this.end(s, 'shutdown')));
  }

  size(): number {
    return this.sessions.size;
  }

  /** The session, if it exists and belongs to this credential (anything else reads as not found). */
  get(id: string, principal: PrincipalSnapshot): McpSession | undefined {
    const session = this.sessions.get(id);
    if (!session || session.ended || session.credential !== credentialKey(principal)) return undefined;
    session.principal = principal;
    session.lastUsed = Date.now();
    return session;
  }

  /** Seconds to wait before another session may open for this credential, or 0. */
  admit(principal: PrincipalSnapshot): number {
    const credential = credentialKey(principal);
    const open = [...this.sessions.values()].filter((s) => s.credential === credential && !s.ended);
    if (open.length < this.config.agentGateway.maxSessionsPerCredential) return 0;
    const oldestIdleEnd = Math.min(...open.map((s) => s.lastUsed)) + this.config.agentGateway.sessionIdleMs;
    return Math.max(1, Math.ceil((oldestIdleEnd - Date.now()) / 1000));
  }

  /** A new session for an initialize request; it is registered before the answer goes out. */
  async open(principal: PrincipalSnapshot, client: { name?: string; version?: string; protocolVersion?: string }): Promise<McpSession> {
    const id = randomUUID();
    const server = this.handlers.createServer(() => this.sessions.get(id));
    const transport = new JsonHttpTransport(id, () => {
      const session = this.sessions.get(id);
      if (session) void this.end(session, 'client');
    });
    const session: McpSession = {
      id,
      server,
      transport,
      credential: credentialKey(principal),
      principal,
      lastUsed: Date.now(),
      ended: false,
      checkedVersion: principal.policyVersion,
      recordsRead: new Map(),
      toolCalls: 0,
    };
    this.sessions.set(id, session);
    await server.connect(transport);
    transport.dispatchRequestsTo(server);
    await this.audit
      .record(principal, {
        action: 'agent.session.started',
        outcome: 'success',
        target: { type: 'mcp_session', id },
        details: {
          client: {
            ...(client.name ? { name: client.name.slice(0, 200) } : {}),
            ...(client.version ? { version: client.version.slice(0, 64) } : {}),
          },
          ...(client.protocolVersion ? { protocolVersion: client.protocolVersion.slice(0, 32) } : {}),
        },
      })
      .catch(async (error: unknown) => {
        // A session whose start cannot be audited does not open.
        await this.end(session, 'shutdown', false);
        throw error;
      });
    return session;
  }

  /**
   * Stateless mode (CUSTODIAN_MCP_STATELESS): one POST served by a server and transport of its own,
   * closed with the response. Nothing outlives the request, so any replica can answer the next one.
   */
  async serveStateless(principal: PrincipalSnapshot, req: Request & { auth?: AuthInfo }, res: Response, body: unknown): Promise<void> {
    const session: HandlerSession = { id: randomUUID(), principal, recordsRead: new Map(), toolCalls: 0 };
    const server = this.handlers.createServer(() => session);
    const transport = new JsonHttpTransport(undefined);
    await server.connect(transport);
    transport.dispatchRequestsTo(server);
    res.on('close', () => void server.close().catch(() => undefined));
    await transport.handlePost(req, res, body, req.auth);
  }

  /** Audits a refused session start (the cap). */
  async refused(principal: PrincipalSnapshot, reason: string): Promise<void> {
    await this.audit
      .record(principal, { action: 'agent.session.started', outcome: 'denied', target: { type: 'mcp_session' }, details: { reason } })
      .catch((error: unknown) => this.logger.warn({ err: error }, 'session refusal audit failed'));
  }

  private async end(session: McpSession, reason: EndReason, audited = true): Promise<void> {
    if (session.ended) return;
    session.ended = true;
    this.sessions.delete(session.id);
    await session.server.close().catch(() => undefined);
    if (!audited) return;
    await this.audit
      .record(session.principal, {
        action: 'agent.session.ended',
        outcome: 'success',
        target: { type: 'mcp_session', id: session.id },
        details: { reason, toolCalls: session.toolCalls },
      })
      .catch((error: unknown) => this.logger.warn({ err: error, reason }, 'session end audit failed'));
  }

  private sweep(): void {
    const cutoff = Date.now() - this.config.agentGateway.sessionIdleMs;
    for (const session of this.sessions.values()) if (session.lastUsed < cutoff) void this.end(session, 'idle');
  }

  /**
   * The org's policy version moved. Per principal, not per org: each open session's credential is
   * resolved again at the new version (one identity request per credential), its tools and object
   * catalog recomputed, and only a session whose tool list (or resource list) differs from the one it
   * was shown gets `notifications/tools/list_changed` (or `resources/list_changed`). Checks of one
   * org run in order, so a later change is never compared against an older one.
   */
  private policyChanged(orgId: string, version: number): void {
    const previous = this.checks.get(orgId) ?? Promise.resolve();
    const next = previous
      .then(() => this.recheck(orgId, version))
      .catch((error: unknown) => this.logger.warn({ err: error, orgId }, 'tools/list_changed check failed'));
    this.checks.set(orgId, next);
    void next.finally(() => {
      if (this.checks.get(orgId) === next) this.checks.delete(orgId);
    });
  }

  /** Re-checks the org's sessions at `version` and notifies those whose lists changed. */
  async recheck(orgId: string, version: number): Promise<void> {
    const byCredential = new Map<string, McpSession[]>();
    for (const session of this.sessions.values()) {
      if (session.ended || session.principal.orgId !== orgId || session.checkedVersion >= version) continue;
      byCredential.set(session.credential, [...(byCredential.get(session.credential) ?? []), session]);
    }
    for (const sessions of byCredential.values()) {
      const principal = sessions[sessions.length - 1].principal;
      const fresh = await this.resolveAgain(principal);
      const now = fresh ? await this.catalog.fingerprints(fresh) : undefined;
      for (const session of sessions) {
        if (session.ended) continue;
        session.checkedVersion = Math.max(session.checkedVersion, version);
        // What the session was shown; one that never listed compares with its principal before the change.
        const before =
          session.toolsSeen !== undefined && session.resourcesSeen !== undefined
            ? { tools: session.toolsSeen, objects: session.resourcesSeen }
            : await this.catalog.fingerprints(session.principal).catch(() => undefined);
        const tools = session.toolsSeen ?? before?.tools;
        const objects = session.resourcesSeen ?? before?.objects;
        // A credential that no longer resolves has lost its tools: tell the client to list again.
        if (!now || now.tools !== tools) {
          session.toolsSeen = now?.tools;
          session.server.sendToolListChanged().catch(() => undefined);
        }
        if (!now || now.objects !== objects) {
          session.resourcesSeen = now?.objects;
          session.server.sendResourceListChanged().catch(() => undefined);
        }
      }
    }
  }

  /** The credential's principal as identity builds it now (same session or key, same delegation), or undefined if it no longer resolves. */
  private async resolveAgain(p: PrincipalSnapshot): Promise<PrincipalSnapshot | undefined> {
    try {
      return await this.bus.request(GetPrincipalSnapshot, {
        userId: p.userId,
        orgId: p.orgId,
        ...(p.sessionId ? { sessionId: p.sessionId } : {}),
        ...(p.apiKeyId ? { apiKeyId: p.apiKeyId } : {}),
        ...(p.agent ? { delegation: { clientId: p.agent.clientId, name: p.agent.name, scopes: [...p.agent.scopes] } } : {}),
      });
    } catch (error) {
      this.logger.info({ err: error }, 'credential did not resolve for a tools/list_changed check');
      return undefined;
    }
  }
}
