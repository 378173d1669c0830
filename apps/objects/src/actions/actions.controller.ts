import { Controller, Get, Inject, Param, Req } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { API_PREFIX, RequirePolicy, ApiContract } from '@custodian/platform';
import { PolicyError } from '@custodian/policy';
import type { Request } from 'express';
import { RequestDecisionService } from '../decision/request-decision.service';
import { ActionsService, type ActionView } from './actions.service';
import { Items } from '../objects.api-schemas';

type AuthedRequest = Request & { principal: PrincipalSnapshot };

@Controller(`${API_PREFIX}/meta/objects`)
export class ActionsController {
  constructor(
    @Inject(ActionsService) private readonly actions: ActionsService,
    @Inject(RequestDecisionService) private readonly decisions: RequestDecisionService,
  ) {}

  /**
   * The actions declared on an object. Like describing the object: `manage_metadata` sees every
   * action in full; another member only on an object they may read (else 404, R6), and only the
   * values of fields they may read (R5).
   */
  @RequirePolicy({ reason: 'every member lists the actions of the objects they may read' })
  @ApiContract({ responses: { 200: Items }, problems: ['object_not_found'] })
  @Get(':name/actions')
  async list(@Req() req: AuthedRequest, @Param('name') name: string): Promise<{ items: ActionView[]; nextCursor: null }> {
    if (!/^[a-z][a-z0-9_]{0,27}$/.test(name)) throw new PolicyError('object_not_found', { object: name.slice(0, 64) });
    const { decision, catalog } = await this.decisions.forPrincipal(req.principal);
    const exists = catalog.definitions.has(name);
    if (decision.hasCapability('manage_metadata') && exists)
      return { items: await this.actions.list(req.principal.orgId, name), nextCursor: null };
    if (!exists || !decision.objectVisible(name) || !decision.can('read', name))
      throw new PolicyError('object_not_found', { object: name });
    const readable = new Set(decision.readableFields(name));
    const items = (await this.actions.list(req.principal.orgId, name)).map((a) => ({
      ...a,
      set: Object.fromEntries(Object.entries(a.set).filter(([field]) => readable.has(field))),
    }));
    return { items, nextCursor: null };
  }
}
