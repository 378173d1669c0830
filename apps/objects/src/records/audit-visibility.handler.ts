import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import {
  GetAuditVisibility,
  GetPrincipalSnapshot,
  type AuditVisibility,
  type ObjectVisibility,
  type PrincipalSnapshot,
  type RequestOf,
} from '@custodian/contracts';
import { BUS, CustodianException, SERVICE_DATA_SOURCE, type Bus } from '@custodian/platform';
import { sqlOfPlan } from '@custodian/policy';
import type { DataSource } from 'typeorm';
import { RequestDecisionService, type GovernedContext } from '../decision/request-decision.service';
import { recordTable } from '../metadata/org-tables';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** What a reader identity no longer accepts may read: nothing. */
const NOTHING: AuditVisibility = { unrestricted: false, objects: {}, readable: [] };

/**
 * Answers the audit service's question for one page of events: which of the records and objects
 * it names the reader can read now, and which fields (docs/adr/0012). Decided by the same
 * Decision and row filter as the records API, on the reader's snapshot as identity gives it now.
 */
@Injectable()
export class AuditVisibilityBusHandler implements OnApplicationBootstrap {
  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(RequestDecisionService) private readonly decisions: RequestDecisionService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.bus.handle(GetAuditVisibility, (req) => this.answer(req));
  }

  async answer(req: RequestOf<typeof GetAuditVisibility>): Promise<AuditVisibility> {
    const principal = await this.reader(req.reader);
    if (!principal) return NOTHING;
    const ctx = await this.decisions.forPrincipal(principal);
    const objects: Record<string, ObjectVisibility> = {};
    for (const name of new Set([...req.objects, ...req.records.map((r) => r.object)])) {
      const visibility = objectVisibility(ctx, name);
      if (visibility) objects[name] = visibility;
    }
    const readable: AuditVisibility['readable'] = [];
    const idsByObject = new Map<string, string[]>();
    for (const r of req.records) {
      const o = objects[r.object];
      // Ids that are not record ids cannot name a readable record.
      if (!o || o.allRecords || !UUID.test(r.id)) continue;
      idsByObject.set(r.object, [...(idsByObject.get(r.object) ?? []), r.id]);
    }
    for (const [object, ids] of idsByObject) {
      const filter = ctx.decision.rowFilter('read', object, { alias: 't', paramOffset: 1 });
      const rows: Array<{ id: string }> = await this.ds.query(
        `SELECT t.id::text AS id FROM ${recordTable(principal.orgId, object)} t WHERE t.id = ANY($1::uuid[]) AND ${sqlOfPlan(filter.plan)}`,
        [[...new Set(ids)], ...filter.params],
      );
      for (const row of rows) readable.push({ object, id: row.id });
    }
    return { unrestricted: unrestricted(ctx), objects, readable };
  }

  /** The reader's snapshot as identity gives it now; undefined when identity no longer accepts the reader. */
  private async reader(reader: RequestOf<typeof GetAuditVisibility>['reader']): Promise<PrincipalSnapshot | undefined> {
    try {
      return await this.bus.request(GetPrincipalSnapshot, reader);
    } catch (error) {
      if (
        error instanceof CustodianException &&
        (error.code === 'unauthenticated' || error.code === 'not_found' || error.code === 'forbidden')
      )
        return undefined;
      throw error;
    }
  }
}

/** How the reader sees one object, or undefined when it cannot read it (unknown, hidden by app or agent, no read). */
function objectVisibility(ctx: GovernedContext, object: string): ObjectVisibility | undefined {
  if (!ctx.catalog.definitions.has(object) || !ctx.decision.objectVisible(object) || !ctx.decision.can('read', object)) return undefined;
  return { allRecords: ctx.decision.readsEveryRecord(object), readableFields: [...ctx.decision.readableFields(object)] };
}

/** Every record and every field of every object of the org is readable: the reader's access hides nothing. */
function unrestricted(ctx: GovernedContext): boolean {
  for (const [name, def] of ctx.catalog.definitions) {
    const o = objectVisibility(ctx, name);
    if (!o || !o.allRecords) return false;
    const readable = new Set(o.readableFields);
    if (def.fields.some((f) => !readable.has(f.name))) return false;
  }
  return true;
}
