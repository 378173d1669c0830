import { ErrorCode, type PrincipalSnapshot } from '@custodian/contracts';
import { CustodianException, missingCapabilities, PrincipalResolver, type Bus, type CustodianConfig } from '@custodian/platform';
import { AGENT_SCOPES } from '@custodian/policy';
import type { Logger } from 'pino';

/** The path of the RFC 9728 document; 401 answers at /mcp point to it. */
export const PROTECTED_RESOURCE_PATH = '/.well-known/oauth-protected-resource';

/** Why a bearer was refused at /mcp (logged and audited; the client sees one 401 for all of them). */
export class McpAuthError extends Error {
  constructor(readonly reason: string) {
    super(`MCP authentication refused: ${reason}`);
  }
}

/**
 * Authenticates `/mcp` requests. Two credentials are accepted: a delegated agent token whose audience
 * is the MCP resource (RFC 8707; identity issues that audience only through the token exchange), and
 * an API key that holds `mcp_access`. A plain user token is refused — it is minted for the REST API
 * audience and this verifier checks for the MCP one — as is a delegated token for the REST API. The
 * bearer is used here only; nothing downstream receives it, only the principal snapshot.
 */
export class McpAuthenticator {
  private readonly resolver: PrincipalResolver;
  private readonly inflight = new Map<string, Promise<PrincipalSnapshot>>();
  /**
   * Whether an API key's principal holds mcp_access, per snapshot object: the resolver hands out the
   * same snapshot while it caches it, and deciding a capability compiles the principal's whole policy
   * (for a principal over 200 objects about 25 KiB of garbage per request). A new snapshot (a policy
   * change, a cache expiry) is decided again.
   */
  private readonly mcpAccess = new WeakMap<PrincipalSnapshot, boolean>();

  constructor(
    bus: Bus,
    private readonly config: CustodianConfig,
    logger: Logger,
  ) {
    this.resolver = new PrincipalResolver(
      bus,
      {
        issuer: config.auth.issuer,
        audience: config.auth.mcpResource,
        clockToleranceSeconds: config.auth.clockToleranceSeconds,
        maxLifetimeSeconds: config.auth.accessTokenTtlSeconds + config.auth.clockToleranceSeconds,
      },
      logger,
      { ttlMs: config.auth.principalCacheMs },
    );
  }

  start(): Promise<void> {
    return this.resolver.start();
  }

  /**
   * Concurrent requests with the same bearer share one resolution: when the cached principal
   * expires under load, 20 sessions of one key ask identity once, not 20 times (a herd that made
   * identity miss its bus deadline in the 200-session benchmark). Nothing is kept after it settles.
   */
  private resolveOnce(token: string): Promise<PrincipalSnapshot> {
    let pending = this.inflight.get(token);
    if (!pending) {
      pending = this.resolver.resolveBearer(token).finally(() => this.inflight.delete(token));
      this.inflight.set(token, pending);
    }
    return pending;
  }

  /** The principal behind an `Authorization` header, or an McpAuthError saying why not. */
  async authenticate(header: string | undefined): Promise<PrincipalSnapshot> {
    const token = bearerToken(header);
    if (!token) throw new McpAuthError('no_bearer');
    let principal: PrincipalSnapshot;
    try {
      principal = await this.resolveOnce(token);
    } catch (error) {
      if (error instanceof CustodianException && error.code === ErrorCode.Unauthenticated) throw new McpAuthError('invalid_token');
      throw error;
    }
    if (token.startsWith('cak_')) {
      let allowed = this.mcpAccess.get(principal);
      if (allowed === undefined) {
        allowed = missingCapabilities(principal, ['mcp_access']).length === 0;
        this.mcpAccess.set(principal, allowed);
      }
      if (!allowed) throw new McpAuthError('api_key_without_mcp_access');
      return principal;
    }
    // A JWT with the MCP audience is only ever issued by the token exchange; checked all the same.
    if (!principal.agent) throw new McpAuthError('not_delegated');
    return principal;
  }

  /** The `WWW-Authenticate` challenge of a 401 at /mcp (RFC 6750 §3, RFC 9728 §5.1). */
  challenge(reason: 'missing' | 'invalid'): string {
    const metadata = `${this.config.agentGateway.publicUrl}${PROTECTED_RESOURCE_PATH}`;
    const error = reason === 'invalid' ? ', error="invalid_token"' : '';
    return `Bearer resource_metadata="${metadata}"${error}, scope="${AGENT_SCOPES.join(' ')}"`;
  }

  /** The RFC 9728 protected resource metadata of the MCP endpoint. */
  metadata(): Record<string, unknown> {
    return {
      resource: this.config.auth.mcpResource,
      // Identity's OAuth 2.1 server for MCP clients, mounted at /oauth (docs/sso.md, Connecting MCP clients with OAuth).
      authorization_servers: [`${this.config.agentGateway.publicUrl}/oauth`],
      bearer_methods_supported: ['header'],
      scopes_supported: [...AGENT_SCOPES],
      resource_name: 'Custodian agent gateway (MCP)',
    };
  }
}

function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  // The auth scheme is case-insensitive (RFC 7235 §2.1); the token itself is not.
  return /^[Bb][Ee][Aa][Rr][Ee][Rr] ([A-Za-z0-9._~+/=-]{1,8192})$/.exec(header)?.[1];
}
