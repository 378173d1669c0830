import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { ApplyApprovalPolicies } from '@custodian/contracts';
import { BUS, type Bus } from '@custodian/platform';
import { ApprovalPoliciesService } from './policies/approval-policies.service';

/** What approvals answers on the bus. */
@Injectable()
export class ApprovalsBusHandlers implements OnApplicationBootstrap {
  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(ApprovalPoliciesService) private readonly policies: ApprovalPoliciesService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.bus.handle(ApplyApprovalPolicies, (req) => this.policies.apply(req));
  }
}
