import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Req } from '@nestjs/common';
import { ErrorCode, type PrincipalSnapshot } from '@custodian/contracts';
import { API_PREFIX, CustodianException, RequirePolicy, ApiContract, SETTING_NAME_SEGMENT } from '@custodian/platform';
import { AGENT_SCOPES } from '@custodian/policy';
import type { Request } from 'express';
import { AgentProfilesService, type ProfileFields } from './profiles.service';
import { DEFAULT_LIMITS, type Profile, type ProfileLimits } from './runtime-store';
import { AnyObject, ProfileAnswer, ProfileList } from '../agent-gateway.api-schemas';

type AuthedRequest = Request & { principal: PrincipalSnapshot };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const LIMIT_BOUNDS: Record<keyof ProfileLimits, [number, number]> = {
  toolCallsPerTurn: [0, 100],
  modelCallsPerTurn: [1, 50],
  tokensPerTurn: [16, 1_000_000],
  wallTimeMs: [1000, 3_600_000],
};

function hasControlChars(text: string): boolean {
  return [...text].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
}

function invalid(path: string, message: string): CustodianException {
  return new CustodianException(ErrorCode.ValidationFailed, 'Invalid agent profile', { issues: [{ path, message }] });
}

/** The profile fields from a request body, checked; anything unknown or out of range is a 400. */
function parseProfile(body: unknown): ProfileFields {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw invalid('/', 'a JSON object');
  const b = body as Record<string, unknown>;
  for (const key of Object.keys(b))
    if (!['name', 'model', 'provider', 'systemPrompt', 'scopes', 'limits'].includes(key))
      throw invalid(`/${key.slice(0, 64)}`, 'unknown property');
  // The name travels as the delegated agent's display name: identity's rules for agent names apply.
  if (typeof b.name !== 'string' || b.name.length < 1 || b.name.length > 200 || hasControlChars(b.name))
    throw invalid('/name', '1 to 200 characters, no control characters');
  // A named provider (provider.<name>.* settings) instead of the org default; null or absent = the default.
  if (b.provider !== undefined && b.provider !== null && (typeof b.provider !== 'string' || !SETTING_NAME_SEGMENT.test(b.provider)))
    throw invalid('/provider', 'a provider name: a-z, 0-9 and _, starting with a letter, at most 32 characters');
  if (b.model !== undefined && b.model !== null && (typeof b.model !== 'string' || b.model.length < 1 || b.model.length > 128))
    throw invalid('/model', '1 to 128 characters');
  if (b.systemPrompt !== undefined && (typeof b.systemPrompt !== 'string' || b.systemPrompt.length > 20_000))
    throw invalid('/systemPrompt', 'at most 20000 characters');
  if (!Array.isArray(b.scopes) || b.scopes.some((s) => typeof s !== 'string' || !(AGENT_SCOPES as readonly string[]).includes(s)))
    throw invalid('/scopes', `a list of agent scopes: ${AGENT_SCOPES.join(', ')}`);
  const limits: ProfileLimits = { ...DEFAULT_LIMITS };
  if (b.limits !== undefined) {
    if (!b.limits || typeof b.limits !== 'object' || Array.isArray(b.limits)) throw invalid('/limits', 'an object');
    for (const [key, value] of Object.entries(b.limits)) {
      const bounds = LIMIT_BOUNDS[key as keyof ProfileLimits];
      if (!bounds) throw invalid(`/limits/${key.slice(0, 64)}`, 'unknown limit');
      if (typeof value !== 'number' || !Number.isInteger(value) || value < bounds[0] || value > bounds[1])
        throw invalid(`/limits/${key}`, `an integer from ${bounds[0]} to ${bounds[1]}`);
      limits[key as keyof ProfileLimits] = value;
    }
  }
  return {
    name: b.name,
    model: (b.model as string | null | undefined) ?? null,
    provider: (b.provider as string | null | undefined) ?? null,
    systemPrompt: (b.systemPrompt as string | undefined) ?? '',
    scopes: [...new Set(b.scopes as string[])],
    limits,
  };
}

/**
 * `/api/v1/agent/profiles`: the org's agents (model, system prompt, scopes, limits). Anyone who may
 * use agents sees them; changing one needs manage_settings, as it decides what agents may do.
 */
@Controller(`${API_PREFIX}/agent/profiles`)
export class AgentProfilesController {
  constructor(@Inject(AgentProfilesService) private readonly profiles: AgentProfilesService) {}

  @ApiContract({ responses: { 200: ProfileList } })
  @Get()
  @RequirePolicy({ capabilities: ['agent_access'] })
  async list(@Req() req: AuthedRequest): Promise<{ items: Profile[]; nextCursor: null }> {
    return { items: await this.profiles.list(req.principal.orgId), nextCursor: null };
  }

  @ApiContract({ responses: { 200: ProfileAnswer } })
  @Get(':id')
  @RequirePolicy({ capabilities: ['agent_access'] })
  async get(@Req() req: AuthedRequest, @Param('id') id: string): Promise<Profile> {
    const profile = UUID.test(id) ? await this.profiles.get(req.principal.orgId, id) : undefined;
    if (!profile) throw CustodianException.notFound('Agent profile not found');
    return profile;
  }

  @ApiContract({ body: AnyObject, responses: { 201: ProfileAnswer }, problems: ['conflict'] })
  @Post()
  @RequirePolicy({ capabilities: ['manage_settings'] })
  async create(@Req() req: AuthedRequest, @Body() body: unknown): Promise<Profile> {
    return this.profiles.create(req.principal, parseProfile(body));
  }

  @ApiContract({ body: AnyObject, responses: { 200: ProfileAnswer }, problems: ['conflict'] })
  @Put(':id')
  @RequirePolicy({ capabilities: ['manage_settings'] })
  async replace(@Req() req: AuthedRequest, @Param('id') id: string, @Body() body: unknown): Promise<Profile> {
    if (!UUID.test(id) || !(await this.profiles.get(req.principal.orgId, id))) throw CustodianException.notFound('Agent profile not found');
    return this.profiles.replace(req.principal, id, parseProfile(body));
  }

  @ApiContract({ responses: { 204: null }, problems: ['conflict'] })
  @Delete(':id')
  @HttpCode(204)
  @RequirePolicy({ capabilities: ['manage_settings'] })
  async remove(@Req() req: AuthedRequest, @Param('id') id: string): Promise<void> {
    if (!UUID.test(id)) throw CustodianException.notFound('Agent profile not found');
    await this.profiles.remove(req.principal, id);
  }
}
