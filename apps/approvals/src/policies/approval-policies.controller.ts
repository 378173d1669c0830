import { Controller, Get, Inject, Req } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { API_PREFIX, CustodianException, RequirePolicy, ApiContract } from '@custodian/platform';
import type { Request } from 'express';
import { ApprovalPoliciesService, holdsAny, type ApprovalPolicyView } from './approval-policies.service';
import { PolicyList } from '../approvals.api-schemas';

type AuthedRequest = Request & { principal: PrincipalSnapshot };
const READERS = ['approve_actions', 'manage_metadata'] as const;

@Controller(`${API_PREFIX}/approvals/policies`)
export class ApprovalPoliciesController {
  constructor(@Inject(ApprovalPoliciesService) private readonly policies: ApprovalPoliciesService) {}

  /** Approvers and metadata managers see the org's approval policies. */
  @RequirePolicy({ reason: 'either approve_actions or manage_metadata: the route policy holds AND only, so the handler checks the OR' })
  @ApiContract({ responses: { 200: PolicyList } })
  @Get()
  async list(@Req() req: AuthedRequest): Promise<{ items: ApprovalPolicyView[]; nextCursor: null }> {
    if (!holdsAny(req.principal, READERS)) {
      await this.policies.denied(req.principal, `GET ${req.route?.path ?? req.path}`, READERS);
      throw CustodianException.forbidden('Missing capability', { missing: [...READERS], anyOf: true });
    }
    return { items: await this.policies.list(req.principal.orgId), nextCursor: null };
  }
}
