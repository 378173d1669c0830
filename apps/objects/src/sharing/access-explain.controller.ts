import { Body, Controller, HttpCode, Inject, Post, Req, UseFilters } from '@nestjs/common';
import { GetPrincipalSnapshot, type PrincipalSnapshot } from '@custodian/contracts';
import { API_PREFIX, BUS, CustodianException, RequirePolicy, SERVICE_DATA_SOURCE, assertValid, type Bus } from '@custodian/platform';
import { InMemoryAccessFacts, PolicyError, type Explanation, type ObjectAction, type RecordShare } from '@custodian/policy';
import type { Request } from 'express';
import type { DataSource } from 'typeorm';
import { RequestDecisionService } from '../decision/request-decision.service';
import type { OrgCatalog } from '../metadata/object-catalog.service';
import { recordTable } from '../metadata/org-tables';
import { ExplainBodySchema } from './sharing.schemas';
import { DenialAuditFilter } from '../records/denial-audit.filter';

type AuthedRequest = Request & { principal: PrincipalSnapshot };
type Row = Record<string, unknown>;
const MAX_PARENT_HOPS = 4;

/** Row values as the in-memory evaluator compares them (timestamps as ISO strings). */
function plain(row: Row): Row {
  const out: Row = {};
  for (const [k, v] of Object.entries(row)) out[k] = v instanceof Date ? v.toISOString() : v;
  return out;
}

/**
 * R9: which layer allowed or denied an action, from the same facts the SQL filter reads (the
 * directory replica and the share table). Anyone may ask about themselves; asking about another
 * member of the org needs manage_permissions or manage_sharing.
 */
@UseFilters(DenialAuditFilter)
@Controller(`${API_PREFIX}/access`)
export class AccessExplainController {
  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(RequestDecisionService) private readonly decisions: RequestDecisionService,
    @Inject(BUS) private readonly bus: Bus,
  ) {}

  @RequirePolicy({
    reason: 'users explain their own access; explaining someone else needs manage_permissions or manage_sharing (checked here)',
  })
  @Post('explain')
  @HttpCode(200)
  async explain(@Req() req: AuthedRequest, @Body() body: unknown): Promise<Explanation & { userId: string }> {
    const input = assertValid(ExplainBodySchema, body, { what: 'explain request' });
    const caller = await this.decisions.forPrincipal(req.principal);
    let subject = req.principal;
    if (input.userId && input.userId !== req.principal.userId) {
      if (!caller.decision.hasCapability('manage_permissions') && !caller.decision.hasCapability('manage_sharing'))
        throw CustodianException.forbidden('Explaining another user needs manage_permissions or manage_sharing', {
          missing: ['manage_permissions'],
        });
      subject = await this.bus.request(GetPrincipalSnapshot, { userId: input.userId, orgId: req.principal.orgId }).catch(() => {
        throw CustodianException.notFound('User not found');
      });
    }
    const { decision, catalog } = subject === req.principal ? caller : await this.decisions.forPrincipal(subject);
    if (!catalog.definitions.has(input.object)) throw new PolicyError('object_not_found', { object: input.object });
    let record: Row | undefined;
    let facts: InMemoryAccessFacts | undefined;
    if (input.recordId) {
      // The record is looked up in the caller's org only (R1); the caller must be able to read it.
      const visible = await this.ds.query(
        `SELECT 1 FROM ${recordTable(req.principal.orgId, input.object)} t WHERE t.id = $1 AND ${caller.decision.rowFilter('read', input.object, { alias: 't', paramOffset: 1 }).text}`,
        [input.recordId, ...caller.decision.rowFilter('read', input.object, { alias: 't', paramOffset: 1 }).params],
      );
      if (visible.length === 0) throw CustodianException.notFound('Record not found');
      ({ record, facts } = await this.facts(req.principal.orgId, catalog, input.object, input.recordId));
    }
    const explanation = decision.explain({
      action: input.action as ObjectAction,
      object: input.object,
      ...(record ? { record, facts } : {}),
      ...(input.field ? { field: input.field } : {}),
    });
    return { ...explanation, userId: subject.userId };
  }

  /** The facts of one record: its owner's role and groups, the role tree, its shares, its master chain. */
  private async facts(
    orgId: string,
    catalog: OrgCatalog,
    object: string,
    id: string,
  ): Promise<{ record: Row; facts: InMemoryAccessFacts }> {
    const records: Record<string, Row[]> = {};
    const shares: RecordShare[] = [];
    const owners = new Set<string>();
    let current: { object: string; id: string } | undefined = { object, id };
    let first: Row | undefined;
    for (let hop = 0; current && hop <= MAX_PARENT_HOPS; hop++) {
      const rows: Row[] = await this.ds.query(`SELECT * FROM ${recordTable(orgId, current.object)} WHERE id = $1 AND org_id = $2`, [
        current.id,
        orgId,
      ]);
      if (rows.length === 0) break;
      const row = plain(rows[0]);
      first ??= row;
      (records[current.object] ??= []).push(row);
      if (typeof row.owner_id === 'string') owners.add(row.owner_id);
      const shareRows: Row[] = await this.ds.query(
        'SELECT grantee_type, grantee_id, access_level FROM record_shares WHERE org_id = $1 AND object_name = $2 AND record_id = $3',
        [orgId, current.object, current.id],
      );
      for (const s of shareRows)
        shares.push({
          object: current.object,
          recordId: current.id,
          granteeType: s.grantee_type,
          granteeId: s.grantee_id,
          accessLevel: s.access_level,
        } as RecordShare);
      const parent: { field: string; object: string } | undefined = catalog.policy.get(current.object)?.parent;
      current = parent && typeof row[parent.field] === 'string' ? { object: parent.object, id: row[parent.field] as string } : undefined;
    }
    if (!first) throw CustodianException.notFound('Record not found');
    const ownerIds = [...owners];
    const userRoles: Array<{ user_id: string; role_id: string }> = await this.ds.query(
      'SELECT user_id, role_id FROM user_roles WHERE org_id = $1 AND user_id = ANY($2::uuid[])',
      [orgId, ownerIds],
    );
    const parents: Array<{ role_id: string; parent_id: string | null }> = await this.ds.query(
      'SELECT role_id, parent_id FROM role_parent WHERE org_id = $1',
      [orgId],
    );
    const members: Array<{ group_id: string; user_id: string }> = await this.ds.query(
      'SELECT group_id, user_id FROM group_members WHERE org_id = $1 AND user_id = ANY($2::uuid[])',
      [orgId, ownerIds],
    );
    const groupMembers = new Map<string, string[]>();
    for (const m of members) groupMembers.set(m.group_id, [...(groupMembers.get(m.group_id) ?? []), m.user_id]);
    const facts = new InMemoryAccessFacts({
      userRoles: new Map(userRoles.map((r) => [r.user_id, r.role_id])),
      roleParents: new Map(parents.map((p) => [p.role_id, p.parent_id])),
      groupMembers,
      shares,
      records,
    });
    return { record: first, facts };
  }
}
