import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  ApprovalPoliciesChanged,
  ErrorCode,
  GetPrincipalSnapshot,
  normaliseApprovalPolicy,
  type ApplyApprovalPolicies,
  type ApprovalPolicy,
  type BundleChange,
  type PrincipalSnapshot,
  type RequestOf,
  type ResponseOf,
} from '@custodian/contracts';
import {
  BUS,
  CustodianException,
  OutboxWriter,
  SERVICE_DATA_SOURCE,
  canonicalJson,
  missingCapabilities,
  requestContext,
  type Bus,
} from '@custodian/platform';
import type { Capability } from '@custodian/policy';
import type { DataSource, EntityManager } from 'typeorm';
import { ApprovalPolicyEntity } from '../entities/approval-policy.entity';

type Request = RequestOf<typeof ApplyApprovalPolicies>;
type Result = ResponseOf<typeof ApplyApprovalPolicies>;

export interface ApprovalPolicyView extends ApprovalPolicy {
  id: string;
  createdAt: string;
  updatedAt: string;
}

/** Capability checks go through the policy library (R6; agents hold no administrative capability, R7). */
export function holdsAny(principal: PrincipalSnapshot, capabilities: readonly Capability[]): boolean {
  return missingCapabilities(principal, capabilities).length < capabilities.length;
}

class DryRunRollback extends Error {
  constructor(readonly result: Result) {
    super('dry run');
  }
}

const view = (row: ApprovalPolicyEntity): ApprovalPolicyView => ({
  ...row.definition,
  id: row.id,
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString(),
});

/**
 * Approval policies (when a change waits for approval, by whom). Applied from bundles over the bus,
 * idempotently by name in one transaction, each change audited through this service's outbox.
 */
@Injectable()
export class ApprovalPoliciesService {
  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(BUS) private readonly bus: Bus,
  ) {}

  async list(orgId: string): Promise<ApprovalPolicyView[]> {
    const rows = await this.ds.getRepository(ApprovalPolicyEntity).find({ where: { orgId }, order: { name: 'ASC' }, take: 1000 });
    return rows.map(view);
  }

  /** Records a refusal (A6) in this service's outbox; a failure to write it never hides the refusal. */
  async denied(principal: PrincipalSnapshot, route: string, missing: readonly string[]): Promise<void> {
    await this.ds
      .transaction((m) =>
        this.outbox.append(m, {
          orgId: principal.orgId,
          action: 'authz.denied',
          outcome: 'denied',
          target: { type: 'route', id: route.slice(0, 128) },
          details: { reason: 'forbidden', missingCapabilities: [...missing] },
        }),
      )
      .catch(() => undefined);
  }

  async apply(req: Request): Promise<Result> {
    // The actor is rebuilt by identity (live session / key, current capabilities), never trusted as sent.
    const principal = await this.bus.request(GetPrincipalSnapshot, {
      userId: req.actor.userId,
      orgId: req.orgId,
      ...(req.actor.sessionId ? { sessionId: req.actor.sessionId } : {}),
      ...(req.actor.apiKeyId ? { apiKeyId: req.actor.apiKeyId } : {}),
    });
    const ctx = { requestId: requestContext.requestId() ?? `bus-${Date.now()}`, principal };
    return requestContext.run(ctx, async () => {
      if (!holdsAny(principal, ['manage_metadata'])) {
        await this.denied(principal, 'bus approvals.policies.apply', ['manage_metadata']);
        throw CustodianException.forbidden('Missing capability', { missing: ['manage_metadata'] });
      }
      const seen = new Set<string>();
      req.policies.forEach((p, i) => {
        if (seen.has(p.name))
          throw new CustodianException(ErrorCode.ValidationFailed, `Duplicate approval policy ${p.name}`, {
            issues: [{ path: `/approvalPolicies/${i}/name`, message: 'duplicate name' }],
          });
        seen.add(p.name);
      });
      try {
        const applied = await this.ds.transaction(async (m) => {
          const result = { changes: await this.applyIn(m, principal.orgId, req) };
          if (req.dryRun) throw new DryRunRollback(result);
          return result;
        });
        // Objects caches which policy catches a write; after the commit, every process drops the org's entries.
        if (applied.changes.some((c) => c.change !== 'unchanged'))
          await this.bus.publish(ApprovalPoliciesChanged, { orgId: principal.orgId }, { messageId: `approval-policies:${randomUUID()}` });
        return applied;
      } catch (error) {
        if (error instanceof DryRunRollback) return error.result;
        throw error;
      }
    });
  }

  private async applyIn(m: EntityManager, orgId: string, req: Request): Promise<BundleChange[]> {
    await m.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`approvals:policies:${orgId}`]);
    const current = new Map((await m.find(ApprovalPolicyEntity, { where: { orgId } })).map((r) => [r.name, r]));
    const changes: BundleChange[] = [];
    for (const input of req.policies) {
      const next = normaliseApprovalPolicy(input);
      const existing = current.get(next.name);
      if (existing && canonicalJson(existing.definition) === canonicalJson(next)) {
        changes.push({ kind: 'approval_policy', name: next.name, id: existing.id, change: 'unchanged' });
        continue;
      }
      const id = existing?.id ?? randomUUID();
      if (existing) {
        await m.query('UPDATE approval_policy SET definition = $2::jsonb, updated_at = now() WHERE id = $1', [id, JSON.stringify(next)]);
      } else {
        await m.insert(ApprovalPolicyEntity, { id, orgId, name: next.name, definition: next });
      }
      await this.outbox.append(m, {
        orgId,
        action: 'approvals.policy.changed',
        outcome: 'success',
        target: { type: 'approval_policy', id },
        details: { name: next.name, ...(existing ? { before: existing.definition } : {}), after: next },
      });
      changes.push({
        kind: 'approval_policy',
        name: next.name,
        id,
        change: existing ? 'update' : 'create',
        ...(existing ? { before: existing.definition } : {}),
        after: next,
      });
    }
    return changes;
  }
}
