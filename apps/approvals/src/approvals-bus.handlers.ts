import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { ApplyApprovalPolicies, FilePendingAction, GetPendingActionState, MatchApprovalPolicy } from '@custodian/contracts';
import { BUS, type Bus } from '@custodian/platform';
import { PendingActionsService } from './pending-actions/pending-actions.service';
import { ApprovalPoliciesService } from './policies/approval-policies.service';

/** What approvals answers on the bus. */
@Injectable()
export class ApprovalsBusHandlers implements OnApplicationBootstrap {
  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(ApprovalPoliciesService) private readonly policies: ApprovalPoliciesService,
    @Inject(PendingActionsService) private readonly actions: PendingActionsService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.bus.handle(ApplyApprovalPolicies, (req) => this.policies.apply(req));
    await this.bus.handle(FilePendingAction, (req) => this.actions.file(req.proposer, req.proposal));
    await this.bus.handle(MatchApprovalPolicy, async (req) => {
      const p = await this.actions.matchPolicy(req.orgId, req.object, req.operation);
      return {
        policy: p ? { name: p.name, minApprovals: p.definition.minApprovals, approverCapability: p.definition.approverCapability } : null,
      };
    });
    await this.bus.handle(GetPendingActionState, async (req) => {
      const row = await this.actions.stateFor(req.proposer, req.id);
      return {
        id: row.id,
        kind: row.kind,
        object: row.objectName,
        state: row.state,
        revision: row.revision,
        expiresAt: row.expiresAt.toISOString(),
        recordId: row.recordId,
        outcome: row.outcome,
      };
    });
  }
}
