import { Controller, Get, Inject, Query, Req } from '@nestjs/common';
import { ErrorCode, GetPrincipalSnapshot, type PrincipalSnapshot } from '@custodian/contracts';
import {
  API_PREFIX,
  BUS,
  CustodianException,
  DenialAuditor,
  markDenialAudited,
  missingCapabilities,
  rateLimited,
  RequirePolicy,
  type Bus,
  ApiContract,
} from '@custodian/platform';
import { AGENT_SCOPES } from '@custodian/policy';
import type { Request } from 'express';
import { ToolCatalogService } from '../tools/tool-catalog.service';
import { AnyObject, ToolsQuery } from '../agent-gateway.api-schemas';

type AuthedRequest = Request & { principal: PrincipalSnapshot };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const QUERY_KEYS = new Set(['userId', 'scopes']);
/** The agent a preview with scopes stands for; it never exists as a credential. */
const PREVIEW_AGENT = { clientId: 'tool-preview', name: 'Tool preview' };

function invalid(path: string, message: string): CustodianException {
  return new CustodianException(ErrorCode.ValidationFailed, 'Invalid query', { issues: [{ path, message }] });
}

/**
 * `GET /api/v1/agent/tools`: the MCP tools (with their input schemas) as a principal would see them.
 * Anyone may ask for themselves — as their own credential, or as an agent holding `scopes` would;
 * asking for another user of the org (`userId`) needs `manage_permissions`, as the answer reveals
 * what that user may do.
 */
@Controller(`${API_PREFIX}/agent`)
export class AgentToolsController {
  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(ToolCatalogService) private readonly catalog: ToolCatalogService,
    @Inject(DenialAuditor) private readonly denials: DenialAuditor,
  ) {}

  @ApiContract({
    summary: 'The MCP tools an agent of this user (with these scopes) would see',
    query: ToolsQuery,
    responses: { 200: AnyObject },
  })
  @Get('tools')
  @RequirePolicy({ reason: 'the caller sees their own tools; another user’s need manage_permissions (checked in the handler)' })
  async tools(@Req() req: AuthedRequest, @Query() q: Record<string, unknown>): Promise<Record<string, unknown>> {
    for (const key of Object.keys(q)) if (!QUERY_KEYS.has(key)) throw invalid(`/query/${key.slice(0, 64)}`, 'unknown parameter');
    const caller = req.principal;
    if (q.userId !== undefined && (typeof q.userId !== 'string' || !UUID.test(q.userId))) throw invalid('/query/userId', 'a user id');
    const scopes = parseScopes(q.scopes);
    const userId = (q.userId as string | undefined) ?? caller.userId;
    const self = userId === caller.userId;
    if (!self) {
      const missing = missingCapabilities(caller, ['manage_permissions']);
      if (missing.length > 0) {
        const verdict = await this.denials.record({
          principal: caller,
          route: 'GET /api/v1/agent/tools',
          missing,
          controller: AgentToolsController,
        });
        if (verdict.limited) throw markDenialAudited(rateLimited(verdict.retryAfterSeconds));
        throw markDenialAudited(CustodianException.forbidden('Missing capability', { missing }));
      }
    }
    const principal = await this.principalFor(caller, userId, self, scopes);
    // Exactly what /mcp lists for this principal.
    const { result } = await this.catalog.listFor(principal);
    return {
      userId,
      agent: principal.agent ? { scopes: principal.agent.scopes } : null,
      policyVersion: principal.policyVersion,
      tools: result.tools,
    };
  }

  private async principalFor(
    caller: PrincipalSnapshot,
    userId: string,
    self: boolean,
    scopes: string[] | undefined,
  ): Promise<PrincipalSnapshot> {
    if (self && scopes === undefined) return caller;
    // An agent caller previews at most its own scopes: the preview never shows more than it holds.
    const granted = caller.agent && scopes ? scopes.filter((s) => caller.agent!.scopes.includes(s as never)) : scopes;
    try {
      return await this.bus.request(GetPrincipalSnapshot, {
        userId,
        orgId: caller.orgId,
        ...(self && caller.sessionId ? { sessionId: caller.sessionId } : {}),
        ...(self && caller.apiKeyId ? { apiKeyId: caller.apiKeyId } : {}),
        ...(granted ? { delegation: { ...PREVIEW_AGENT, scopes: granted } } : {}),
      });
    } catch (error) {
      if (error instanceof CustodianException && (error.code === ErrorCode.Unauthenticated || error.code === ErrorCode.NotFound))
        throw CustodianException.notFound('User not found');
      throw error;
    }
  }
}

function parseScopes(raw: unknown): string[] | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || raw.length > 512) throw invalid('/query/scopes', 'space- or comma-separated agent scopes');
  const scopes = [...new Set(raw.split(/[\s,]+/).filter(Boolean))];
  const unknown = scopes.filter((s) => !(AGENT_SCOPES as readonly string[]).includes(s));
  if (unknown.length > 0) throw invalid('/query/scopes', `allowed scopes: ${AGENT_SCOPES.join(' ')}`);
  return scopes;
}
