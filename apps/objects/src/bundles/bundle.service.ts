import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, type PrincipalSnapshot } from '@custodian/contracts';
import { CustodianException, OutboxWriter, assertValid } from '@custodian/platform';
import { assertNoForbiddenKeys } from '@custodian/policy';
import { parse as parseYaml } from 'yaml';
import type { ObjectDefinitionInput, StoredObjectDefinition } from '../metadata/object-definition.schema';
import { ObjectMetadataService, normalise } from '../metadata/object-metadata.service';
import { BundleSchema, type Bundle } from './bundle.schema';

export interface BundleChange {
  kind: 'object' | 'sharing_rules';
  name: string;
  change: 'create' | 'update' | 'unchanged';
  before?: unknown;
  after?: unknown;
}

export interface BundleResult {
  dryRun: boolean;
  digest: string;
  changes: BundleChange[];
  /** Sections this service does not apply (identity owns roles, groups, permission sets). */
  notApplied: Array<{ section: string; count: number; reason: string }>;
}

class DryRunRollback extends Error {
  constructor(readonly result: BundleResult) {
    super('dry run');
  }
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
  return assertValid(BundleSchema, value, { what: 'bundle' });
}

/** JSON with sorted keys: jsonb does not keep key order, so plain JSON.stringify would always differ. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

function comparable(def: StoredObjectDefinition): string {
  return canonical({ ...def, sharingRules: undefined });
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
 * Applies a bundle in one transaction (PostgreSQL DDL is transactional): each object is created or
 * replaced only when it differs, sharing rules likewise — applying the same bundle again changes
 * nothing. A dry-run does all of it and rolls back, returning the same diff.
 */
@Injectable()
export class BundleService {
  constructor(
    @Inject(ObjectMetadataService) private readonly metadata: ObjectMetadataService,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
  ) {}

  async apply(principal: PrincipalSnapshot, bundle: Bundle, dryRun: boolean): Promise<BundleResult> {
    const digest = `sha256:${createHash('sha256').update(canonical(bundle)).digest('hex')}`;
    const notApplied = (['roles', 'groups', 'permissionSets', 'actions', 'approvalPolicies'] as const)
      .filter((k) => (bundle[k]?.length ?? 0) > 0)
      .map((k) => ({
        section: k,
        count: bundle[k]!.length,
        reason:
          k === 'actions' || k === 'approvalPolicies'
            ? 'declared for the services that own them; not applied by objects'
            : 'owned by identity: apply with the bundle CLI (scripts) or identity’s API',
      }));
    try {
      return await this.metadata.inOrgTransaction(principal.orgId, async (m) => {
        const changes: BundleChange[] = [];
        for (const input of dependencyOrder(bundle.objects ?? [])) {
          const current = (await this.metadata.definitions(m, principal.orgId)).get(input.name);
          const next = normalise(input);
          if (!current) {
            await this.metadata.createIn(m, principal, input);
            changes.push({ kind: 'object', name: input.name, change: 'create', after: next });
          } else if (comparable(current) !== comparable({ ...next, sharingRules: current.sharingRules })) {
            await this.metadata.replaceIn(m, principal, input.name, input);
            changes.push({
              kind: 'object',
              name: input.name,
              change: 'update',
              before: { ...current, sharingRules: undefined },
              after: next,
            });
          } else {
            changes.push({ kind: 'object', name: input.name, change: 'unchanged' });
          }
        }
        for (const [object, rules] of Object.entries(bundle.sharingRules ?? {})) {
          const current = (await this.metadata.definitions(m, principal.orgId)).get(object);
          if (!current) throw new CustodianException(ErrorCode.ValidationFailed, `Sharing rules for unknown object ${object}`);
          if (canonical(current.sharingRules) === canonical(rules)) {
            changes.push({ kind: 'sharing_rules', name: object, change: 'unchanged' });
            continue;
          }
          await this.metadata.setSharingRules(m, principal.orgId, object, rules);
          await this.outbox.append(m, {
            orgId: principal.orgId,
            action: 'objects.sharing_rule.changed',
            outcome: 'success',
            target: { type: 'sharing_rule', id: `${object}:*` },
            details: { name: '*', object, changes: { rules: { from: current.sharingRules, to: rules } } },
          });
          changes.push({ kind: 'sharing_rules', name: object, change: 'update', before: current.sharingRules, after: rules });
        }
        const result: BundleResult = { dryRun, digest, changes, notApplied };
        if (dryRun) throw new DryRunRollback(result);
        const summary = { create: 0, update: 0, unchanged: 0 };
        for (const c of changes) summary[c.change]++;
        await this.outbox.append(m, {
          orgId: principal.orgId,
          action: 'objects.bundle.applied',
          outcome: 'success',
          target: { type: 'bundle', id: bundle.name.slice(0, 128) },
          details: { digest: digest.slice(0, 80), dryRun: false, summary },
        });
        return result;
      });
    } catch (error) {
      if (error instanceof DryRunRollback) return error.result;
      throw error;
    }
  }
}
