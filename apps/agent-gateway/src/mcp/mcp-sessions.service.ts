import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { PolicyVersionChanged, type PrincipalSnapshot } from '@custodian/contracts';
import { BUS, CONFIG, LOGGER, type Bus, type CustodianConfig } from '@custodian/platform';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { Logger } from 'pino';
import { GatewayAudit } from '../audit/gateway-audit.service';
import { credentialKey } from '../tools/credential-key';
import type { ToolSession } from '../tools/tool-executor.service';
import { JsonHttpTransport } from './json-http-transport';
import { McpHandlers } from './mcp-handlers';

export interface McpSession extends ToolSession {
  readonly server: Server;
  readonly transport: JsonHttpTransport;
  /** The credential that opened the session; only it may use the session. */
  readonly credential: string;
  /** The principal of the latest request (a refreshed token may carry a newer policy version). */
  principal: PrincipalSnapshot;
  lastUsed: number;
  ended: boolean;
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
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(CONFIG) private readonly config: CustodianConfig,
    @Inject(McpHandlers) private readonly handlers: McpHandlers,
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
      recordsRead: new Map(),
      toolCalls: 0,
    };
    this.sessions.set(id, session);
    await server.connect(transport);
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

  /** The org's permissions changed: every session of it re-lists its tools (they are recomputed per principal). */
  private policyChanged(orgId: string, version: number): void {
    for (const session of this.sessions.values()) {
      if (session.ended || session.principal.orgId !== orgId || session.principal.policyVersion >= version) continue;
      session.server.sendToolListChanged().catch(() => undefined);
      session.server.sendResourceListChanged().catch(() => undefined);
    }
  }
}
