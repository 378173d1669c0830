import { Body, Controller, HttpCode, Inject, Post, Req, UseFilters } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { API_PREFIX, RequirePolicy, assertValid, ApiContract, AnyObject } from '@custodian/platform';
import type { Explanation } from '@custodian/policy';
import type { Request } from 'express';
import { AccessExplainService } from './access-explain.service';
import { ExplainBodySchema } from './sharing.schemas';
import { DenialAuditFilter } from '../records/denial-audit.filter';

type AuthedRequest = Request & { principal: PrincipalSnapshot };

/** R9: which layer allowed or denied an action (AccessExplainService). */
@UseFilters(DenialAuditFilter)
@Controller(`${API_PREFIX}/access`)
export class AccessExplainController {
  constructor(@Inject(AccessExplainService) private readonly explainer: AccessExplainService) {}

  @RequirePolicy({
    reason: 'users explain their own access; explaining someone else needs manage_permissions or manage_sharing (checked here)',
  })
  @ApiContract({
    summary: 'Why a user can or cannot do something to a record',
    body: ExplainBodySchema,
    responses: { 200: AnyObject },
    problems: ['object_not_found'],
  })
  @Post('explain')
  @HttpCode(200)
  async explain(@Req() req: AuthedRequest, @Body() body: unknown): Promise<Explanation & { userId: string }> {
    const input = assertValid(ExplainBodySchema, body, { what: 'explain request' });
    return this.explainer.explain(req.principal, input);
  }
}
