import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Req } from '@nestjs/common';
import { ErrorCode, type PrincipalSnapshot } from '@custodian/contracts';
import { API_PREFIX, CustodianException, RequirePolicy, assertValid, ApiContract } from '@custodian/platform';
import type { SharingRule } from '@custodian/policy';
import type { Request } from 'express';
import { ObjectMetadataService } from '../metadata/object-metadata.service';
import { objectParam } from '../records/records.controller';
import { MAX_RULES_PER_OBJECT, SharingRuleBodySchema } from './sharing.schemas';
import { SharingRulesService, type RulesEdit } from './sharing-rules.service';
import { AnyObject, Rules } from '../objects.api-schemas';

type AuthedRequest = Request & { principal: PrincipalSnapshot };
const MANAGE_SHARING = { capabilities: ['manage_sharing'] } as const;

/** Sharing rules (R4d) of one object: stored with its definition, validated by the policy library, audited. */
@Controller(`${API_PREFIX}/meta/objects/:name/sharing-rules`)
export class SharingRulesController {
  constructor(
    @Inject(ObjectMetadataService) private readonly metadata: ObjectMetadataService,
    @Inject(SharingRulesService) private readonly rules: SharingRulesService,
  ) {}

  @RequirePolicy(MANAGE_SHARING)
  @ApiContract({ responses: { 200: Rules }, problems: ['object_not_found'] })
  @Get()
  async list(@Req() req: AuthedRequest, @Param('name') name: string): Promise<{ items: unknown[]; nextCursor: null }> {
    const def = await this.metadata.get(req.principal.orgId, objectParam(name));
    return { items: def.sharingRules, nextCursor: null };
  }

  @RequirePolicy(MANAGE_SHARING)
  @ApiContract({
    body: SharingRuleBodySchema,
    responses: { 201: AnyObject },
    problems: ['object_not_found', 'conflict', 'invalid_metadata'],
  })
  @Post()
  async create(@Req() req: AuthedRequest, @Param('name') name: string, @Body() body: unknown): Promise<SharingRule> {
    const rule = assertValid(SharingRuleBodySchema, body, { what: 'sharing rule' });
    return this.change(req.principal, objectParam(name), rule.name, (rules) => {
      if (rules.some((r) => r.name === rule.name)) throw new CustodianException(ErrorCode.Conflict, 'A rule with this name exists');
      if (rules.length >= MAX_RULES_PER_OBJECT) throw new CustodianException(ErrorCode.Conflict, 'Too many sharing rules on this object');
      return { rules: [...rules, rule], before: null, after: rule };
    });
  }

  @RequirePolicy(MANAGE_SHARING)
  @ApiContract({ body: SharingRuleBodySchema, responses: { 200: AnyObject }, problems: ['object_not_found', 'invalid_metadata'] })
  @Put(':rule')
  async replace(
    @Req() req: AuthedRequest,
    @Param('name') name: string,
    @Param('rule') ruleName: string,
    @Body() body: unknown,
  ): Promise<SharingRule> {
    const rule = assertValid(SharingRuleBodySchema, body, { what: 'sharing rule' });
    if (rule.name !== ruleName) throw new CustodianException(ErrorCode.ValidationFailed, 'The rule name must match the path');
    return this.change(req.principal, objectParam(name), ruleName, (rules) => {
      const before = rules.find((r) => r.name === ruleName);
      if (!before) throw CustodianException.notFound('Sharing rule not found');
      return { rules: rules.map((r) => (r.name === ruleName ? rule : r)), before, after: rule };
    });
  }

  @RequirePolicy(MANAGE_SHARING)
  @ApiContract({ responses: { 204: null }, problems: ['object_not_found'] })
  @Delete(':rule')
  @HttpCode(204)
  async remove(@Req() req: AuthedRequest, @Param('name') name: string, @Param('rule') ruleName: string): Promise<void> {
    await this.change(req.principal, objectParam(name), ruleName, (rules) => {
      const before = rules.find((r) => r.name === ruleName);
      if (!before) throw CustodianException.notFound('Sharing rule not found');
      return { rules: rules.filter((r) => r.name !== ruleName), before, after: null };
    });
  }

  private change(principal: PrincipalSnapshot, object: string, ruleName: string, edit: RulesEdit): Promise<SharingRule> {
    return this.rules.change(principal, object, ruleName, edit);
  }
}
