import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Put, Req } from '@nestjs/common';
import { ErrorCode, type PrincipalSnapshot } from '@custodian/contracts';
import { API_PREFIX, CustodianException, RequirePolicy, type SettingView, ApiContract } from '@custodian/platform';
import type { Request } from 'express';
import { RuntimeSettingsService } from './settings.service';
import { Setting, SettingList, SettingValue } from '../agent-gateway.api-schemas';

type AuthedRequest = Request & { principal: PrincipalSnapshot };

const NAME = /^[a-z][a-z0-9_.]{0,127}$/;

/**
 * `/api/v1/agent/settings`: the org's agent runtime settings (model provider, egress policy,
 * retention). Under the agent prefix because each service serves its own settings from its own
 * schema; a shared `/api/v1/settings` would need one owner. Secrets are write-only.
 */
@Controller(`${API_PREFIX}/agent/settings`)
export class RuntimeSettingsController {
  constructor(@Inject(RuntimeSettingsService) private readonly settings: RuntimeSettingsService) {}

  @ApiContract({ summary: 'The org’s agent runtime settings (secret values are never answered)', responses: { 200: SettingList } })
  @Get()
  @RequirePolicy({ capabilities: ['manage_settings'] })
  async list(@Req() req: AuthedRequest): Promise<{ items: SettingView[]; nextCursor: null }> {
    return { items: await this.settings.list(req.principal.orgId), nextCursor: null };
  }

  @ApiContract({ body: SettingValue, responses: { 200: Setting } })
  @Put(':name')
  @RequirePolicy({ capabilities: ['manage_settings'] })
  async put(@Req() req: AuthedRequest, @Param('name') name: string, @Body() body: unknown): Promise<SettingView> {
    if (!NAME.test(name) || !this.settings.isKnown(name)) throw CustodianException.notFound('Unknown setting');
    if (!body || typeof body !== 'object' || Array.isArray(body) || Object.keys(body).some((k) => k !== 'value') || !('value' in body))
      throw new CustodianException(ErrorCode.ValidationFailed, 'Invalid setting', {
        issues: [{ path: '/', message: 'the body is { "value": … }' }],
      });
    return this.settings.set(req.principal, name, (body as { value: unknown }).value);
  }

  @ApiContract({ responses: { 204: null } })
  @Delete(':name')
  @HttpCode(204)
  @RequirePolicy({ capabilities: ['manage_settings'] })
  async clear(@Req() req: AuthedRequest, @Param('name') name: string): Promise<void> {
    if (!NAME.test(name) || !this.settings.isKnown(name)) throw CustodianException.notFound('Unknown setting');
    await this.settings.clear(req.principal, name);
  }
}
