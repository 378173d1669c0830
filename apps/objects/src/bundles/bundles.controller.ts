import { Body, Controller, Get, HttpCode, Inject, Post, Req } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { API_PREFIX, RequirePolicy, assertValid, ApiContract, AnyObject } from '@custodian/platform';
import type { Request } from 'express';
import { ApplyBundleRequestSchema, BundleSchema } from './bundle.schema';
import { BundleService, parseBundle, type BundleResult } from './bundle.service';
import { BundleAnswer } from '../objects.api-schemas';

type AuthedRequest = Request & { principal: PrincipalSnapshot };

@Controller(`${API_PREFIX}/bundles`)
export class BundlesController {
  constructor(@Inject(BundleService) private readonly bundles: BundleService) {}

  /** The published JSON Schema of the bundle document. */
  @RequirePolicy({ reason: 'the bundle format is documentation, not data' })
  @ApiContract({ summary: 'The JSON Schema of a bundle document', responses: { 200: AnyObject } })
  @Get('schema')
  schema(): unknown {
    return BundleSchema;
  }

  /**
   * `{ bundle: {...} }` or `{ document: "<YAML or JSON text>" }`, with `dryRun` for the diff only.
   * Beyond `manage_metadata`, each non-empty section needs the capability of its own REST routes
   * (roles: manage_roles, groups: manage_users, permission sets: manage_permissions, sharing rules:
   * manage_sharing), checked by the service; identity and approvals check again on their side.
   */
  @RequirePolicy({ capabilities: ['manage_metadata'], proposeThroughApprovals: true })
  @ApiContract({
    summary: 'Apply (or dry-run) a bundle: identity, objects and approvals sections',
    body: ApplyBundleRequestSchema,
    responses: { 200: BundleAnswer },
    problems: ['conflict', 'invalid_metadata'],
  })
  @Post('apply')
  @HttpCode(200)
  apply(@Req() req: AuthedRequest, @Body() body: unknown): Promise<BundleResult> {
    const input = assertValid(ApplyBundleRequestSchema, body, { what: 'bundle request' });
    return this.bundles.apply(req.principal, parseBundle(input), input.dryRun ?? false);
  }
}
