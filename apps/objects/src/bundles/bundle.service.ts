import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  ApplyApprovalPolicies,
  ApplyIdentityBundle,
  ErrorCode,
  type BundleActor,
  type BundleChange,
  type PrincipalSnapshot,
  type ResponseOf,
} from '@custodian/contracts';
import {
  BUS,
  CustodianException,
  LOGGER,
  OutboxWriter,
  assertValid,
  missingCapabilities,
  canonicalJson,
  type Bus,
} from '@custodian/platform';
import { assertNoForbiddenKeys, type Capability, type SharingRule } from '@custodian/policy';
import type { Logger } from 'pino';
import type { EntityManager } from 'typeorm';
import { parse as parseYaml } from 'yaml';
import { ActionsService, checkActions } from '../actions/actions.service';
import type { ObjectDefinitionInput, StoredObjectDefinition } from '../metadata/object-definition.schema';
import { ObjectMetadataService, normalise } from '../metadata/object-metadata.service';
import { BundleSchema, type Bundle, type BundleSharingRule } from './bundle.schema';

export type { BundleChange };

export interface BundleResult {
  dryRun: boolean;
  digest: string;
  /** Every section's changes: identity (roles, groups, permission sets), objects, approvals. */
  changes: BundleChange[];
}

function withoutId(change: BundleChange): BundleChange {
  const { id: _id, ...rest } = change;
  return rest;
}

class DryRunRollback extends Error {
  constructor(readonly changes: BundleChange[]) {
    super('dry run');
  }
}

type Step = 'identity' | 'objects' | 'approvals';
type IdentityAnswer = ResponseOf<typeof ApplyIdentityBundle>;

/** What each section needs beyond the route's `manage_metadata`: the capability of its own REST routes. */
const SECTION_CAPABILITIES: ReadonlyArray<{ section: 'roles' | 'groups' | 'permissionSets' | 'sharingRules'; capability: Capability }> = [
  { section: 'roles', capability: 'manage_roles' },
  { section: 'groups', capability: 'manage_users' },
  { section: 'permissionSets', capability: 'manage_permissions' },
  { section: 'sharingRules', capability: 'manage_sharing' },
];

function sectionSize(bundle: Bundle, section: (typeof SECTION_CAPABILITIES)[number]['section']): number {
  const value = bundle[section];
  if (!value) return 0;
  return Array.isArray(value) ? value.length : Object.keys(value).length;
}

function invalid(message: string, path: string): CustodianException {
  return new CustodianException(ErrorCode.ValidationFailed, message, { issues: [{ path, message }] });
}

function actorOf(principal: PrincipalSnapshot): BundleActor {
  return {
    userId: principal.userId,
    ...(principal.sessionId ? { sessionId: principal.sessionId } : {}),
    ...(principal.apiKeyId ? { apiKeyId: principal.apiKeyId } : {}),
  };
}

/** Sharing rules with every `{type, name}` grantee replaced by its id from identity's answer. */
function resolveRules(object: string, rules: readonly BundleSharingRule[], ids: IdentityAnswer): SharingRule[] {
  const resolve = <G extends { type: string; id?: string; name?: string }>(g: G, path: string): { type: G['type']; id: string } => {
    if (g.id !== undefined) return { type: g.type, id: g.id };
    const id = g.type === 'group' ? ids.groupIds[g.name!] : ids.roleIds[g.name!];
    if (!id) throw invalid(`Unknown ${g.type === 'group' ? 'group' : 'role'} ${g.name}`, `${path}/name`);
    return { type: g.type, id };
  };
  return rules.map((rule, i) => {
    const path = `/sharingRules/${object}/${i}`;
    if (rule.type === 'criteria') return { ...rule, sharedWith: resolve(rule.sharedWith, `${path}/sharedWith`) } as SharingRule;
    return {
      ...rule,
      ownedBy: resolve(rule.ownedBy, `${path}/ownedBy`),
      sharedWith: resolve(rule.sharedWith, `${path}/sharedWith`),
    } as SharingRule;
  });
}

function usesNames(bundle: Bundle): boolean {
  return Object.values(bundle.sharingRules ?? {}).some((rules) =>
    rules.some((r) => 'name' in r.sharedWith || (r.type === 'owner' && 'name' in r.ownedBy)),
  );
}

/** Counts per kind and change, for the audit summary. */
function summarise(changes: readonly BundleChange[]): Record<string, Record<string, number>> {
  const summary: Record<string, Record<string, number>> = {};
  for (const c of changes) {
    summary[c.kind] ??= { create: 0, update: 0, unchanged: 0 };
    summary[c.kind][c.change]++;
  }
  return summary;
}

/**
 * A failure names the step it happened in and the steps already applied: cross-service apply is not
 * one transaction, but every step is idempotent, so applying the same bundle again converges.
 */
function stepFailure(step: Step, applied: readonly Step[], error: unknown): unknown {
  if (error instanceof CustodianException) {
    const details = error.details && typeof error.details === 'object' && !Array.isArray(error.details) ? error.details : {};
    const message = applied.length > 0 ? `${error.message} (bundle step ${step} failed after ${applied.join(', ')})` : error.message;
    return new CustodianException(error.code, message, { ...details, step, applied: [...applied] });
  }
  if (applied.length === 0) return error;
  return new CustodianException(ErrorCode.Internal, `Bundle step ${step} failed after ${applied.join(', ')}; applying again converges`, {
    step,
    applied: [...applied],
  });
}

/** Parses JSON or YAML text without aliases bombs or prototype keys, then validates the schema. */
export function parseBundle(input: { bundle?: unknown; document?: string }): Bundle {
  let value: unknown = input.bundle;
  if (input.document !== undefined) {
    if (input.bundle !== undefined) throw new CustodianException(ErrorCode.ValidationFailed, 'Give either bundle or document');
    try {
      value = parseYaml(input.document, { maxAliasCount: 0, prettyErrors: false, uniqueKeys: true });
    } catch (error) {
      throw new CustodianException(ErrorCode.ValidationFailed, 'The document is not valid YAML or JSON', {
        issues: [{ path: '/document', message: String((error as Error).message).slice(0, 200) }],
      });
    }
  }
  if (value === undefined) throw new CustodianException(ErrorCode.ValidationFailed, 'A bundle is required');
  assertNoForbiddenKeys(value);
  assertJsonNumbers(value);
  return assertValid(BundleSchema, value, { what: 'bundle' });
}

/**
 * A bundle is JSON data: YAML's `.nan` / `.inf` / `-.inf` have no JSON form (the digest, the stored
 * definitions and the comparisons all use the canonical JSON encoding, which refuses them), so a
 * document carrying one is refused by the path of the first, never stored as something else.
 */
function assertJsonNumbers(value: unknown, path = ''): void {
  if (typeof value === 'number') {
    if (!Number.isFinite(value))
      throw new CustodianException(ErrorCode.ValidationFailed, 'The bundle is not valid', {
        issues: [{ path: path || '/', message: 'must be a finite number (JSON has no NaN or Infinity)' }],
      });
    return;
  }
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) value.forEach((v, i) => assertJsonNumbers(v, `${path}/${i}`));
  else for (const [k, v] of Object.entries(value)) assertJsonNumbers(v, `${path}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`);
}

function comparable(def: StoredObjectDefinition): string {
  return canonicalJson({ ...def, sharingRules: undefined });
}

/** Objects in an order where every lookup target is created before the objects referring to it. */
function dependencyOrder(objects: ObjectDefinitionInput[]): ObjectDefinitionInput[] {
  const byName = new Map(objects.map((o) => [o.name, o]));
  const done = new Set<string>();
  const out: ObjectDefinitionInput[] = [];
  const visit = (o: ObjectDefinitionInput, path: Set<string>): void => {
    if (done.has(o.name)) return;
    if (path.has(o.name)) throw new CustodianException(ErrorCode.ValidationFailed, `Objects refer to each other in a cycle (${o.name})`);
    path.add(o.name);
    for (const f of o.fields) {
      const target = f.reference && f.reference !== o.name ? byName.get(f.reference) : undefined;
      if (target) visit(target, path);
    }
    path.delete(o.name);
    done.add(o.name);
    out.push(o);
  };
  for (const o of objects) visit(o, new Set());
  return out;
}

/**
 * Applies a whole bundle (docs/objects.md, "Bundles"): first a dry-run of every section (identity,
 * objects, approvals) — so validation and authorization refuse before anything is written — then, unless
 * `dryRun`, identity → objects → approvals. Each step is one transaction in its service and
 * idempotent by name; the steps together are not one transaction (see stepFailure).
 */
@Injectable()
export class BundleService {
  constructor(
    @Inject(ObjectMetadataService) private readonly metadata: ObjectMetadataService,
    @Inject(ActionsService) private readonly actions: ActionsService,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(BUS) private readonly bus: Bus,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async apply(principal: PrincipalSnapshot, bundle: Bundle, dryRun: boolean): Promise<BundleResult> {
    const digest = `sha256:${createHash('sha256').update(canonicalJson(bundle)).digest('hex')}`;
    await this.authorize(principal, bundle);
    const identityRequest = {
      orgId: principal.orgId,
      actor: actorOf(principal),
      roles: bundle.roles ?? [],
      groups: bundle.groups ?? [],
      permissionSets: bundle.permissionSets ?? [],
    };
    const needsIdentity =
      identityRequest.roles.length + identityRequest.groups.length + identityRequest.permissionSets.length > 0 || usesNames(bundle);
    const policies = bundle.approvalPolicies ?? [];
    const identity = (run: boolean): Promise<IdentityAnswer> =>
      needsIdentity
        ? this.bus.request(ApplyIdentityBundle, { ...identityRequest, dryRun: !run })
        : Promise.resolve({ changes: [], roleIds: {}, groupIds: {} });
    const approvals = (run: boolean): Promise<BundleChange[]> =>
      policies.length > 0
        ? this.bus
            .request(ApplyApprovalPolicies, { orgId: principal.orgId, actor: actorOf(principal), policies, dryRun: !run })
            .then((r) => r.changes)
        : Promise.resolve([]);

    // 1. Dry-run everything: nothing is written anywhere unless every section would apply.
    const planned = await this.step('identity', [], () => identity(false));
    const plannedObjects = await this.step('objects', [], () => this.objectsSection(principal, bundle, planned, true));
    const plannedApprovals = await this.step('approvals', [], () => approvals(false));
    if (dryRun) {
      // A dry run keeps nothing: the ids its creates got were rolled back, so they are not answered.
      const all = [...planned.changes, ...plannedObjects, ...plannedApprovals];
      return { dryRun, digest, changes: all.map((c) => (c.change === 'create' && c.kind !== 'object' ? withoutId(c) : c)) };
    }

    // 2. Apply identity → objects → approvals; a section with nothing to change is not sent again.
    const applied: Step[] = [];
    const pending = (changes: readonly BundleChange[]): boolean => changes.some((c) => c.change !== 'unchanged');
    const changes: BundleChange[] = [];
    try {
      const ids = pending(planned.changes) ? await this.step('identity', applied, () => identity(true)) : planned;
      changes.push(...ids.changes);
      applied.push('identity');
      changes.push(...(await this.step('objects', applied, () => this.objectsSection(principal, bundle, ids, false))));
      applied.push('objects');
      changes.push(...(pending(plannedApprovals) ? await this.step('approvals', applied, () => approvals(true)) : plannedApprovals));
      applied.push('approvals');
    } catch (error) {
      await this.audit(principal, bundle, digest, changes, applied).catch((auditError: unknown) =>
        this.logger.error({ err: auditError }, 'bundle failure audit event could not be written'),
      );
      throw error;
    }
    await this.audit(principal, bundle, digest, changes, applied);
    return { dryRun, digest, changes };
  }

  /** Each non-empty section needs its own REST capability; a refusal is audited (A6) and writes nothing. */
  private async authorize(principal: PrincipalSnapshot, bundle: Bundle): Promise<void> {
    const missing = missingCapabilities(
      principal,
      SECTION_CAPABILITIES.filter((s) => sectionSize(bundle, s.section) > 0).map((s) => s.capability),
    );
    if (missing.length === 0) return;
    await this.metadata
      .inOrgTransaction(principal.orgId, (m) =>
        this.outbox.append(m, {
          orgId: principal.orgId,
          action: 'authz.denied',
          outcome: 'denied',
          target: { type: 'route', id: 'POST /api/v1/bundles/apply' },
          details: { reason: 'forbidden', missingCapabilities: missing },
        }),
      )
      .catch((error: unknown) => this.logger.error({ err: error }, 'denial audit event could not be written'));
    throw CustodianException.forbidden(`Missing capability: ${missing.join(', ')}`, { missing });
  }

  private async step<T>(step: Step, applied: readonly Step[], fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (applied.length > 0) this.logger.error({ err: error, step, applied }, 'bundle apply failed part-way; applying again converges');
      throw stepFailure(step, applied, error);
    }
  }

  /** `objects.bundle.applied`: every section's changes (success), or how far it got (failure). */
  private async audit(
    principal: PrincipalSnapshot,
    bundle: Bundle,
    digest: string,
    changes: readonly BundleChange[],
    applied: readonly Step[],
  ): Promise<void> {
    const failed = applied.length < 3;
    await this.metadata.inOrgTransaction(principal.orgId, (m) =>
      this.outbox.append(m, {
        orgId: principal.orgId,
        action: 'objects.bundle.applied',
        outcome: failed ? 'failure' : 'success',
        target: { type: 'bundle', id: bundle.name.slice(0, 128) },
        details: {
          digest: digest.slice(0, 80),
          dryRun: false,
          summary: summarise(changes),
          changes: changes.slice(0, 500).map((c) => ({ kind: c.kind, name: c.name, change: c.change })),
          ...(failed ? { appliedSteps: [...applied] } : {}),
        },
      }),
    );
  }

  /**
   * Objects, sharing rules (grantees resolved) and actions in ONE objects transaction (PostgreSQL
   * DDL is transactional); approval policies' object references are checked here too, where the
   * definitions are. A dry-run does all of it and rolls back.
   */
  private async objectsSection(
    principal: PrincipalSnapshot,
    bundle: Bundle,
    ids: IdentityAnswer,
    dryRun: boolean,
  ): Promise<BundleChange[]> {
    const orgId = principal.orgId;
    try {
      return await this.metadata.inOrgTransaction(orgId, async (m) => {
        const changes = await this.objectsIn(m, principal, bundle.objects ?? []);
        for (const [object, rules] of Object.entries(bundle.sharingRules ?? {})) {
          changes.push(await this.sharingRulesIn(m, orgId, object, resolveRules(object, rules, ids)));
        }
        const definitions = await this.metadata.definitions(m, orgId);
        checkActions(bundle.actions ?? [], definitions);
        (bundle.approvalPolicies ?? []).forEach((p, i) => {
          if (p.object !== undefined && !definitions.has(p.object))
            throw invalid(`Unknown object ${p.object}`, `/approvalPolicies/${i}/object`);
        });
        changes.push(...(await this.actions.applyIn(m, orgId, bundle.actions ?? [])));
        if (dryRun) throw new DryRunRollback(changes);
        return changes;
      });
    } catch (error) {
      if (error instanceof DryRunRollback) return error.changes;
      throw error;
    }
  }

  /** Each object is created or replaced only when it differs, lookup targets first. */
  private async objectsIn(m: EntityManager, principal: PrincipalSnapshot, objects: ObjectDefinitionInput[]): Promise<BundleChange[]> {
    const changes: BundleChange[] = [];
    for (const input of dependencyOrder(objects)) {
      const current = (await this.metadata.definitions(m, principal.orgId)).get(input.name);
      const next = normalise(input);
      if (!current) {
        await this.metadata.createIn(m, principal, input);
        changes.push({ kind: 'object', name: input.name, id: input.name, change: 'create', after: next });
      } else if (comparable(current) !== comparable({ ...next, sharingRules: current.sharingRules })) {
        await this.metadata.replaceIn(m, principal, input.name, input);
        changes.push({
          kind: 'object',
          name: input.name,
          id: input.name,
          change: 'update',
          before: { ...current, sharingRules: undefined },
          after: next,
        });
      } else {
        changes.push({ kind: 'object', name: input.name, id: input.name, change: 'unchanged' });
      }
    }
    return changes;
  }

  private async sharingRulesIn(m: EntityManager, orgId: string, object: string, rules: SharingRule[]): Promise<BundleChange> {
    const current = (await this.metadata.definitions(m, orgId)).get(object);
    if (!current) throw invalid(`Sharing rules for unknown object ${object}`, `/sharingRules/${object}`);
    if (canonicalJson(current.sharingRules) === canonicalJson(rules)) return { kind: 'sharing_rules', name: object, change: 'unchanged' };
    await this.metadata.setSharingRules(m, orgId, object, rules);
    await this.outbox.append(m, {
      orgId,
      action: 'objects.sharing_rule.changed',
      outcome: 'success',
      target: { type: 'sharing_rule', id: `${object}:*` },
      details: { name: '*', object, changes: { rules: { from: current.sharingRules, to: rules } } },
    });
    return { kind: 'sharing_rules', name: object, change: 'update', before: current.sharingRules, after: rules };
  }
}
