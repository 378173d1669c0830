import { Inject, Injectable } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { OutboxWriter, SERVICE_DATA_SOURCE, isUndefinedTableOrColumn } from '@custodian/platform';
import { PolicyError, quoteIdent, sqlOfPlan } from '@custodian/policy';
import type { Pool } from 'pg';
import type { DataSource } from 'typeorm';
import { RequestDecisionService, type GovernedContext } from '../decision/request-decision.service';
import { DirectoryReplicaService, parseReplicaState } from '../directory/directory-replica.service';
import type { StoredObjectDefinition } from '../metadata/object-definition.schema';
import { recordTable } from '../metadata/org-tables';
import { aggregateRows, buildAggregateSql, parseAggregations } from './aggregate-query';
import { LIST_ROW_TYPES } from './list-row-types';
import { ListStatementCache, type BuiltList } from './list-statement-cache';
import { bad, pageOf, selectFields, toApiRecord, type ListResult, type ListSpec } from './record-query';
import { notFound, readRow, recordContext, recordId, visibleDef, type RecordContext, type Row } from './record-rows';

export const MAX_EXPAND = 5;

/**
 * The query side of records (step 3 of issue #5): list, get, ObjectQL queries with expand and
 * aggregates. Every statement carries the policy row filter; answers carry readable fields only;
 * objects that audit reads commit their read event. Writes: record-write.service.ts.
 */
@Injectable()
export class RecordQueryService {
  private readonly statements = new ListStatementCache();

  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(RequestDecisionService) private readonly decisions: RequestDecisionService,
  ) {}

  /**
   * A list statement on the data source's own pg pool (TypeORM's master pool: the same
   * connections, session settings and autocommit as `ds.query`, with no QueryRunner, broadcaster
   * or result wrapper per statement). Errors are the driver's (pgCode reads them as it reads
   * TypeORM's). Timestamps arrive in their API form (LIST_ROW_TYPES). Data sources without a pg
   * pool go through `ds.query`.
   */
  private async listRows(text: string, params: readonly unknown[]): Promise<Row[]> {
    const pool = (this.ds.driver as unknown as { master?: Pool }).master;
    if (!pool) return this.ds.query(text, params as unknown[]);
    return (await pool.query<Row>({ text, values: params as unknown[], types: LIST_ROW_TYPES })).rows;
  }

  async context(principal: PrincipalSnapshot, object: string): Promise<RecordContext> {
    return recordContext(this.decisions, principal, object);
  }

  /**
   * A governed list in ONE statement on the hot path: it is built from this process's cached
   * metadata and selects the metadata stamp and replica state alongside the rows (same snapshot).
   * When they prove the decision current (stamp unchanged, replica fresh for the caller's policy
   * version — R10), the page stands; otherwise — or when the page is empty and so proves nothing,
   * or the cached metadata refuses the request — the list starts over on verified metadata
   * (forPrincipal: waits for the replica, re-reads changed metadata).
   */
  async list(principal: PrincipalSnapshot, spec: ListSpec): Promise<ListResult> {
    const unverified = this.decisions.unverified(principal);
    if (unverified) {
      let rows: Row[] | undefined;
      let built: BuiltList | undefined;
      let def: StoredObjectDefinition | undefined;
      try {
        def = this.readableDef(unverified, spec.object);
        built = this.statements.get(unverified.decision, def, principal.orgId, spec, { guard: true });
        rows = await this.listRows(built.text, built.params);
      } catch (error) {
        // A refusal on possibly stale metadata is re-decided on verified metadata below; so is a
        // table or column the cached metadata names that is gone (another replica changed the object).
        if (!(error instanceof PolicyError || isUndefinedTableOrColumn(error))) throw error;
      }
      const proof = rows?.[0];
      if (
        rows &&
        built &&
        def &&
        proof &&
        proof.__stamp === unverified.catalog.stamp &&
        DirectoryReplicaService.isFresh(parseReplicaState(proof.__replica as string | null), principal.policyVersion)
      ) {
        return this.finishList(principal, def, spec, built, rows);
      }
    }
    const verified = await this.decisions.forPrincipal(principal);
    const def = this.readableDef(verified, spec.object);
    const built = this.statements.get(verified.decision, def, principal.orgId, spec);
    return this.finishList(principal, def, spec, built, await this.listRows(built.text, built.params));
  }

  private readableDef(ctx: GovernedContext, object: string): StoredObjectDefinition {
    const def = visibleDef(ctx, object);
    if (!ctx.decision.can('read', object)) throw new PolicyError('action_not_allowed', { action: 'read', object });
    return def;
  }

  private async finishList(
    principal: PrincipalSnapshot,
    def: StoredObjectDefinition,
    spec: ListSpec,
    built: BuiltList,
    rows: Row[],
  ): Promise<ListResult> {
    const page = pageOf(def, spec, built, rows);
    if (def.auditReads && page.records.length > 0) {
      await this.ds.transaction((m) =>
        this.outbox.append(m, {
          orgId: principal.orgId,
          action: 'objects.record.read',
          outcome: 'success',
          target: { type: spec.object },
          details: { fields: built.fields.slice(0, 200), ids: page.records.map((r) => r.id) },
        }),
      );
    }
    return page;
  }

  /** ObjectQL: a governed list, or aggregates with groupBy, optionally expanding lookups. */
  async query(principal: PrincipalSnapshot, spec: ListSpec, raw: Record<string, unknown>): Promise<ListResult | { groups: Row[] }> {
    if (raw.aggregations === undefined && raw.groupBy !== undefined) throw bad('groupBy needs aggregations', '/groupBy');
    if (raw.aggregations !== undefined) {
      if (raw.expand !== undefined || raw.cursor !== undefined || raw.orderBy !== undefined || raw.fields !== undefined)
        throw bad('Aggregations take object, where, groupBy and limit only', '/aggregations');
      const { aggregations, groupBy } = parseAggregations(raw.aggregations, raw.groupBy);
      const { decision, def } = await this.context(principal, spec.object);
      if (!decision.can('read', spec.object)) throw new PolicyError('action_not_allowed', { action: 'read', object: spec.object });
      const built = buildAggregateSql(decision, def, principal.orgId, spec, aggregations, groupBy);
      const rows: Row[] = await this.ds.query(built.text, built.params);
      return { groups: aggregateRows(def, rows, aggregations, groupBy) };
    }
    const expand = raw.expand;
    if (expand !== undefined && (!Array.isArray(expand) || expand.length > MAX_EXPAND || expand.some((e) => typeof e !== 'string')))
      throw bad(`expand is a list of at most ${MAX_EXPAND} lookup fields`, '/expand');
    const page = await this.list(principal, spec);
    if (expand && expand.length > 0) await this.expand(principal, spec.object, page.records, expand as string[]);
    return page;
  }

  /**
   * Replaces nothing: adds `expanded.<field>` with the referenced record as the caller may see it
   * (its own row filter and fields), or null when it is not visible. One statement per field.
   */
  private async expand(principal: PrincipalSnapshot, object: string, records: Row[], fields: string[]): Promise<void> {
    const { decision, def } = await this.context(principal, object);
    decision.assertReadable(object, fields);
    for (const field of fields) {
      const f = def.fields.find((x) => x.name === field);
      if (!f || !f.reference) throw bad('Only lookup fields can be expanded', `/expand/${field}`);
      const target = f.reference;
      // A lookup path into an object the caller cannot read is refused, never answered empty (O4).
      if (!decision.objectVisible(target) || !decision.can('read', target)) throw new PolicyError('field_not_readable', { object, field });
      const targetDef = (await this.context(principal, target)).def;
      const targetFields = selectFields(decision, target, undefined);
      const ids = [...new Set(records.map((r) => r[field]).filter((v): v is string => typeof v === 'string'))];
      const found = new Map<string, Row>();
      if (ids.length > 0) {
        const filter = decision.rowFilter('read', target, { alias: 't', paramOffset: 1 });
        const rows: Row[] = await this.ds.query(
          `SELECT ${targetFields.map((c) => `t.${quoteIdent(c)}`).join(', ')} FROM ${recordTable(principal.orgId, target)} t WHERE t.id = ANY($1::uuid[]) AND ${sqlOfPlan(filter.plan)}`,
          [ids, ...filter.params],
        );
        for (const row of rows) found.set(String(row.id), toApiRecord(targetDef, row, targetFields));
      }
      for (const r of records) {
        const expanded = (r.expanded ?? {}) as Row;
        expanded[field] = typeof r[field] === 'string' ? (found.get(r[field] as string) ?? null) : null;
        r.expanded = expanded;
      }
    }
  }

  async get(principal: PrincipalSnapshot, object: string, id: string): Promise<Record<string, unknown>> {
    const { decision, def } = await this.context(principal, object);
    recordId(id);
    const fields = decision.readableFields(object);
    if (fields.length === 0) throw notFound();
    const row = await readRow(this.ds.manager, decision, principal.orgId, object, id, 'read', false);
    if (!row) throw notFound();
    if (def.auditReads) {
      await this.ds.transaction((m) =>
        this.outbox.append(m, {
          orgId: principal.orgId,
          action: 'objects.record.read',
          outcome: 'success',
          target: { type: object, id },
          details: { fields: [...fields] },
        }),
      );
    }
    return toApiRecord(def, row, fields);
  }
}
