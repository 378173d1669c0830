import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import {
  ApprovalPoliciesChanged,
  FilePendingAction,
  MatchApprovalPolicy,
  type FiledAction,
  type PendingActionKind,
  type PrincipalSnapshot,
  type ResponseOf,
} from '@custodian/contracts';
import { BUS, type Bus } from '@custodian/platform';

type Match = ResponseOf<typeof MatchApprovalPolicy>['policy'];
type Operation = 'create' | 'update' | 'delete';

const KIND: Record<Operation, PendingActionKind> = { create: 'record.create', update: 'record.update', delete: 'record.delete' };
/** A safety net behind the change broadcast: a cached answer is never older than this. */
const TTL_MS = 30_000;
const MAX_ENTRIES = 10_000;
export const DEFAULT_JUSTIFICATION = 'Changed through the records API';

export interface GateInput {
  operation: Operation;
  object: string;
  recordId?: string;
  values?: Record<string, unknown>;
  expectedVersion?: number;
  justification?: string;
}

/**
 * A person's change that an approval policy catches is not written: it is filed as a pending
 * action (the same queue agents use) and the caller gets 202 with it. Which policy catches what is
 * asked of approvals and cached per org, object and operation until approvals announces a change
 * (or a bus gap, or 30 s). If approvals cannot answer, the write fails closed (503): it is not
 * known whether it needs approval.
 */
@Injectable()
export class ApprovalGateService implements OnApplicationBootstrap {
  private readonly cache = new Map<string, { policy: Match; until: number }>();
  private epoch = 0;

  constructor(@Inject(BUS) private readonly bus: Bus) {}

  async onApplicationBootstrap(): Promise<void> {
    const clear = (): void => {
      this.epoch++;
      this.cache.clear();
    };
    await this.bus.listen(
      ApprovalPoliciesChanged,
      (event) => {
        this.epoch++;
        for (const key of this.cache.keys()) if (key.startsWith(`${event.orgId}:`)) this.cache.delete(key);
      },
      { onGap: clear },
    );
  }

  /** Files the change when a policy catches it; undefined means "write it now". */
  async intercept(principal: PrincipalSnapshot, input: GateInput): Promise<FiledAction | undefined> {
    const policy = await this.policyFor(principal.orgId, input.object, input.operation);
    if (!policy) return undefined;
    return this.bus.request(FilePendingAction, {
      proposer: {
        userId: principal.userId,
        orgId: principal.orgId,
        ...(principal.sessionId ? { sessionId: principal.sessionId } : {}),
        ...(principal.apiKeyId ? { apiKeyId: principal.apiKeyId } : {}),
      },
      proposal: {
        kind: KIND[input.operation],
        object: input.object,
        ...(input.recordId ? { recordId: input.recordId } : {}),
        ...(input.values ? { values: input.values } : {}),
        ...(input.expectedVersion !== undefined ? { expectedVersion: input.expectedVersion } : {}),
        justification: input.justification ?? DEFAULT_JUSTIFICATION,
      },
    });
  }

  /** Whether an approval policy catches `operation` on `object` (routes that cannot be filed refuse then). */
  async requiresApproval(orgId: string, object: string, operation: Operation): Promise<boolean> {
    return Boolean(await this.policyFor(orgId, object, operation));
  }

  private async policyFor(orgId: string, object: string, operation: Operation): Promise<Match> {
    const key = `${orgId}:${object}:${operation}`;
    const hit = this.cache.get(key);
    if (hit && hit.until > Date.now()) return hit.policy;
    const epoch = this.epoch;
    const { policy } = await this.bus.request(MatchApprovalPolicy, { orgId, object, operation });
    // An answer that raced a change announcement is used once, not kept.
    if (epoch === this.epoch) {
      if (this.cache.size >= MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(key, { policy, until: Date.now() + TTL_MS });
    }
    return policy;
  }
}
