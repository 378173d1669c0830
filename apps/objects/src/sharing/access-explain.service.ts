import { Inject, Injectable } from '@nestjs/common';
import { GetPrincipalSnapshot, type PrincipalSnapshot } from '@custodian/contracts';
import { BUS, CustodianException, SERVICE_DATA_SOURCE, type Bus } from '@custodian/platform';
import { PolicyError, sqlOfPlan, type Explanation, type ObjectAction } from '@custodian/policy';
import type { DataSource } from 'typeorm';
import { RequestDecisionService } from '../decision/request-decision.service';
import { recordTable, sqlSchemaFor } from '../metadata/org-tables';
import { loadRecordFacts, type LoadedRecordFacts } from './record-access-facts.loader';
import type { ExplainBody } from './sharing.schemas';

/**
 * R9: which layer allowed or denied an action. The library's explain is the decision's own
 * evaluation; the record's facts are read from the tables the SQL filter reads (loadRecordFacts).
 * Anyone may ask about themselves; asking about another member of the org needs
 * manage_permissions or manage_sharing.
 */
@Injectable()
export class AccessExplainService {
  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(RequestDecisionService) private readonly decisions: RequestDecisionService,
    @Inject(BUS) private readonly bus: Bus,
  ) {}

  async explain(principal: PrincipalSnapshot, input: ExplainBody): Promise<Explanation & { userId: string }> {
    const caller = await this.decisions.forPrincipal(principal);
    let subject = principal;
    if (input.userId && input.userId !== principal.userId) {
      if (!caller.decision.hasCapability('manage_permissions') && !caller.decision.hasCapability('manage_sharing'))
        throw CustodianException.forbidden('Explaining another user needs manage_permissions or manage_sharing', {
          missing: ['manage_permissions'],
        });
      subject = await this.bus.request(GetPrincipalSnapshot, { userId: input.userId, orgId: principal.orgId }).catch(() => {
        throw CustodianException.notFound('User not found');
      });
    }
    const { decision, catalog } = subject === principal ? caller : await this.decisions.forPrincipal(subject);
    if (!catalog.definitions.has(input.object)) throw new PolicyError('object_not_found', { object: input.object });
    let loaded: LoadedRecordFacts | undefined;
    if (input.recordId) {
      // The record is looked up in the caller's org only (R1); the caller must be able to read it.
      const filter = caller.decision.rowFilter('read', input.object, { alias: 't', paramOffset: 1 });
      const visible = await this.ds.query(
        `SELECT 1 FROM ${recordTable(principal.orgId, input.object)} t WHERE t.id = $1 AND ${sqlOfPlan(filter.plan)}`,
        [input.recordId, ...filter.params],
      );
      if (visible.length === 0) throw CustodianException.notFound('Record not found');
      const orgId = principal.orgId;
      loaded = await loadRecordFacts(
        (text, params) => this.ds.query(text, params),
        sqlSchemaFor(orgId),
        catalog.policy,
        orgId,
        input.object,
        input.recordId,
      );
      if (!loaded) throw CustodianException.notFound('Record not found');
    }
    const explanation = decision.explain({
      action: input.action as ObjectAction,
      object: input.object,
      ...(loaded ? { record: loaded.record, facts: loaded.facts } : {}),
      ...(input.field ? { field: input.field } : {}),
    });
    return { ...explanation, userId: subject.userId };
  }
}
