import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import {
  ApplySharingRuleChange,
  DescribePermissionChange,
  DryRunPermissionChange,
  PERMISSION_CHANGE_CAPABILITY,
  type PermissionChange,
  type PermissionChangeResult,
  type PrincipalSnapshot,
  type RequestOf,
} from '@custodian/contracts';
import { BUS, CustodianException, contentHash, type Bus } from '@custodian/platform';
import { isPolicyError, type PolicyCatalog, type SharingRule } from '@custodian/policy';
import type { EntityManager } from 'typeorm';
import { RequestDecisionService } from '../decision/request-decision.service';
import { DirectoryReplicaService } from '../directory/directory-replica.service';
import { build, type OrgCatalog } from '../metadata/object-catalog.service';
import { ObjectMetadataService } from '../metadata/object-metadata.service';
import { SharingRulesService, upsertRule } from '../sharing/sharing-rules.service';
import { OUTCOME_BY_CODE, asRequester } from '../decision/as-requester';
import { PermissionImpactService, type ImpactLimits } from './permission-impact.service';

type SharingChange = Extract<PermissionChange, { type: 'sharing_rule.upsert' }>;
type Requester = RequestOf<typeof DryRunPermissionChange>['requester'];

/** Thrown inside a transaction to roll it back with this answer. */
class Answer extends Error {
  constructor(readonly result: PermissionChangeResult) {
    super(result.outcome);
  }
}

/**
 * The role closure after moving role $2 below $3 (null: to the top), over the replica's closure of
 * org $1 — the same detach-and-attach identity performs on its own closure table.
 */
const CLOSURE_AFTER_SQL = `
  SELECT org_id, ancestor_id, descendant_id, depth FROM role_closure
   WHERE org_id = $1 AND NOT (
     descendant_id IN (SELECT descendant_id FROM role_closure WHERE org_id = $1 AND ancestor_id = $2::uuid)
     AND ancestor_id NOT IN (SELECT descendant_id FROM role_closure WHERE org_id = $1 AND ancestor_id = $2::uuid))
  UNION ALL
  SELECT sup.org_id, sup.ancestor_id, sub.descendant_id, sup.depth + sub.depth + 1
    FROM role_closure sup JOIN role_closure sub ON sub.org_id = sup.org_id
   WHERE sup.org_id = $1 AND sup.descendant_id = $3::uuid AND sub.ancestor_id = $2::uuid`;

/** The version of an object's sharing rules: an approved rule is applied only onto the rules it was computed on. */
const rulesVersion = (rules: unknown[] | undefined): string => contentHash({ rules: rules ?? [] });

/**
 * Permission changes for approvals, on objects' side: the dry-run computes a change's impact
 * under the requester's capability now (identity names the users and their snapshots before and
 * after; objects has the records), and approved sharing rules are applied here through the same
 * service as `POST /meta/objects/:name/sharing-rules`, with the rules' version and a receipt.
 */
@Injectable()
export class PermissionImpactBusHandler implements OnApplicationBootstrap {
  /** Caps of one impact; tests lower them to exercise truncation. */
  readonly limits: ImpactLimits = { users: 200, objects: 25, budgetMs: 10_000, statementTimeoutMs: 5_000 };

  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(RequestDecisionService) private readonly decisions: RequestDecisionService,
    @Inject(DirectoryReplicaService) private readonly replica: DirectoryReplicaService,
    @Inject(ObjectMetadataService) private readonly metadata: ObjectMetadataService,
    @Inject(SharingRulesService) private readonly rules: SharingRulesService,
    @Inject(PermissionImpactService) private readonly impact: PermissionImpactService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.bus.handle(DryRunPermissionChange, (req) => this.asRequester(req.requester, (p) => this.dryRun(p, req.change)));
    await this.bus.handle(ApplySharingRuleChange, (req) =>
      this.asRequester(req.requester, (p) => this.applySharing(p, req.change, req.expectedVersion, req.idempotencyKey)),
    );
  }

  /** Runs as the requester, re-read now with its delegation; refused when the change's capability is missing. */
  private async asRequester(
    requester: Requester,
    fn: (principal: PrincipalSnapshot) => Promise<PermissionChangeResult>,
  ): Promise<PermissionChangeResult> {
    return asRequester(this.bus, requester, async (principal) => {
      try {
        return await fn(principal);
      } catch (error) {
        if (error instanceof Answer) return error.result;
        if (isPolicyError(error)) return { outcome: 'invalid', code: 'validation_failed', message: error.message.slice(0, 2000) };
        if (error instanceof CustodianException && OUTCOME_BY_CODE[error.code])
          return { outcome: OUTCOME_BY_CODE[error.code], code: error.code, message: error.message.slice(0, 2000) };
        throw error;
      }
    });
  }

  private async dryRun(principal: PrincipalSnapshot, change: PermissionChange): Promise<PermissionChangeResult> {
    const { decision, catalog } = await this.decisions.forPrincipal(principal);
    const capability = PERMISSION_CHANGE_CAPABILITY[change.type];
    // An agent never holds these (the policy library's delegation table), so its proposal stops here.
    if (!decision.hasCapability(capability))
      return { outcome: 'forbidden', code: 'missing_capability', message: `This change needs ${capability}` };
    const sharing = change.type === 'sharing_rule.upsert' ? this.sharingAfter(catalog, change) : undefined;
    const described = await this.bus.request(DescribePermissionChange, {
      orgId: principal.orgId,
      change,
      ...(sharing ? { grantees: sharing.grantees } : {}),
      limit: this.limits.users,
    });
    if (described.outcome !== 'ok')
      return { outcome: described.outcome, ...(described.code ? { code: described.code } : {}), message: described.message ?? 'Refused' };
    // A set may only carry capabilities its writer or assigner holds; refused now rather than at apply.
    const beyond = grantedBy(change, described.target).filter((c) => !principal.capabilities.includes(c));
    if (beyond.length > 0)
      return {
        outcome: 'forbidden',
        code: 'capability_not_held',
        message: `Cannot grant capabilities you do not hold: ${beyond.join(', ')}`,
      };
    // Before-counts must see the directory the snapshots were built from.
    await this.replica.ensureFresh(principal.orgId, described.policyVersion);
    const impact = await this.impact.compute({
      orgId: principal.orgId,
      described,
      before: catalog,
      after: sharing?.after ?? catalog.policy,
      ...(change.type === 'role.move' ? { closureAfter: { sql: CLOSURE_AFTER_SQL, params: [change.roleId, change.parentId] } } : {}),
      change: summaryOf(change),
      target: sharing?.target ?? described.target ?? {},
      limits: this.limits,
    });
    const version = sharing?.version ?? described.version;
    return { outcome: 'allowed', ...(version ? { version } : {}), impact };
  }

  /** The catalog with the rule upserted (validated by the policy library as it will be used), and who it reaches. */
  private sharingAfter(catalog: OrgCatalog, change: SharingChange) {
    const def = catalog.definitions.get(change.object);
    if (!def) throw new Answer({ outcome: 'not_found', code: 'object_not_found', message: 'No such object' });
    const current = (def.sharingRules ?? []) as SharingRule[];
    const edit = upsertRule(change.rule)(current);
    const definitions = [...catalog.definitions.values()].map((d) => (d.name === change.object ? { ...d, sharingRules: edit.rules } : d));
    const after: PolicyCatalog = build(`${catalog.stamp}+rule`, definitions).policy;
    return {
      after,
      version: rulesVersion(current),
      // A replaced rule's old grantees may lose what the new one no longer gives them.
      grantees: [change.rule.sharedWith, ...(edit.before ? [edit.before.sharedWith] : [])],
      target: { object: change.object, rule: change.rule.name, replaces: edit.before },
    };
  }

  private async applySharing(
    principal: PrincipalSnapshot,
    change: PermissionChange,
    expectedVersion: string,
    idempotencyKey: string,
  ): Promise<PermissionChangeResult> {
    if (change.type !== 'sharing_rule.upsert')
      return { outcome: 'invalid', code: 'validation_failed', message: 'Only sharing rules are applied by objects' };
    const { decision } = await this.decisions.forPrincipal(principal);
    if (!decision.hasCapability('manage_sharing'))
      return { outcome: 'forbidden', code: 'missing_capability', message: 'This change needs manage_sharing' };
    return this.metadata.inOrgTransaction(principal.orgId, async (m) => {
      const receipt = await this.receipt(m, principal, idempotencyKey);
      if (receipt) return receipt;
      const def = (await this.metadata.definitions(m, principal.orgId)).get(change.object);
      if (!def) throw new Answer({ outcome: 'not_found', code: 'object_not_found', message: 'No such object' });
      const version = rulesVersion(def.sharingRules);
      if (version !== expectedVersion)
        throw new Answer({
          outcome: 'stale',
          code: 'precondition_failed',
          message: 'The sharing rules have changed since the proposal',
          version,
        });
      await this.rules.changeIn(m, principal, change.object, change.rule.name, upsertRule(change.rule));
      const stored = (await this.metadata.definitions(m, principal.orgId)).get(change.object);
      const result: PermissionChangeResult = { outcome: 'applied', version: rulesVersion(stored?.sharingRules) };
      await m.query(
        `INSERT INTO idempotency_key (org_id, user_id, key, request_hash, status, response) VALUES ($1, $2, $3, 'sharing_rule', 200, $4::jsonb)`,
        [principal.orgId, principal.userId, idempotencyKey, JSON.stringify(result)],
      );
      return result;
    });
  }

  private async receipt(m: EntityManager, principal: PrincipalSnapshot, key: string): Promise<PermissionChangeResult | undefined> {
    const rows = (await m.query('SELECT response FROM idempotency_key WHERE org_id = $1 AND user_id = $2 AND key = $3', [
      principal.orgId,
      principal.userId,
      key,
    ])) as Array<{ response: PermissionChangeResult }>;
    return rows[0]?.response;
  }
}

/** Capabilities a set change hands out: the new body's, or the assigned set's as identity reports it. */
function grantedBy(change: PermissionChange, target: Record<string, unknown> | undefined): string[] {
  if (change.type === 'permission_set.update')
    return [...(change.body.systemCapabilities ?? []), ...(change.body.integrationCapabilities ?? [])];
  if (change.type !== 'permission_set.assign') return [];
  const set = target?.permissionSet as { capabilities?: unknown } | undefined;
  return Array.isArray(set?.capabilities) ? set.capabilities.filter((c): c is string => typeof c === 'string') : [];
}

/** What reviewers are told the change is (bodies and rules in full: a reviewer approves exactly these). */
function summaryOf(change: PermissionChange): Record<string, unknown> {
  return { ...change };
}
