import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, type PrincipalSnapshot } from '@custodian/contracts';
import { CustodianException, OutboxWriter } from '@custodian/platform';
import type { SharingRule } from '@custodian/policy';
import type { EntityManager } from 'typeorm';
import { ObjectMetadataService } from '../metadata/object-metadata.service';
import { MAX_RULES_PER_OBJECT } from './sharing.schemas';

export type RulesEdit = (rules: SharingRule[]) => { rules: SharingRule[]; before: SharingRule | null; after: SharingRule | null };

/** Create-or-replace by name: the edit an approved `sharing_rule.upsert` makes. */
export function upsertRule(rule: SharingRule): RulesEdit {
  return (rules) => {
    const before = rules.find((r) => r.name === rule.name) ?? null;
    if (!before && rules.length >= MAX_RULES_PER_OBJECT)
      throw new CustodianException(ErrorCode.Conflict, 'Too many sharing rules on this object');
    return { rules: before ? rules.map((r) => (r.name === rule.name ? rule : r)) : [...rules, rule], before, after: rule };
  };
}

/**
 * Changes one object's sharing rules (stored with its definition, validated by the policy library)
 * and audits the change in the same transaction — for the REST routes and for approved changes.
 */
@Injectable()
export class SharingRulesService {
  constructor(
    @Inject(ObjectMetadataService) private readonly metadata: ObjectMetadataService,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
  ) {}

  change(principal: PrincipalSnapshot, object: string, ruleName: string, edit: RulesEdit): Promise<SharingRule> {
    return this.metadata.inOrgTransaction(principal.orgId, (m) => this.changeIn(m, principal, object, ruleName, edit));
  }

  /** Inside the caller's org metadata transaction (see ObjectMetadataService.inOrgTransaction). */
  async changeIn(m: EntityManager, principal: PrincipalSnapshot, object: string, ruleName: string, edit: RulesEdit): Promise<SharingRule> {
    const defs = await this.metadata.definitions(m, principal.orgId);
    const def = defs.get(object);
    if (!def) throw CustodianException.notFound('Object not found');
    const { rules, before, after } = edit(def.sharingRules as SharingRule[]);
    await this.metadata.setSharingRules(m, principal.orgId, object, rules);
    await this.outbox.append(m, {
      orgId: principal.orgId,
      action: 'objects.sharing_rule.changed',
      outcome: 'success',
      target: { type: 'sharing_rule', id: `${object}:${ruleName}`.slice(0, 128) },
      details: { name: ruleName.slice(0, 200), object, changes: { rule: { from: before, to: after } } },
    });
    return (after ?? before)!;
  }
}
