import { PolicyError, isSafeName, quoteIdent, sqlOfPlan, type Decision } from '@custodian/policy';
import { columnType } from '../metadata/field-types';
import type { StoredObjectDefinition } from '../metadata/object-definition.schema';
import { recordTable } from '../metadata/org-tables';
import { bad, toApiRecord, type ListSpec } from './record-query';

export const AGGREGATE_FUNCTIONS = ['count', 'sum', 'avg', 'min', 'max', 'count_distinct'] as const;
type AggregateFunction = (typeof AGGREGATE_FUNCTIONS)[number];
export const MAX_AGGREGATIONS = 10;
export const MAX_GROUP_BY = 3;

export interface Aggregation {
  function: AggregateFunction;
  field?: string;
  alias: string;
}

export function parseAggregations(raw: unknown, groupByRaw: unknown): { aggregations: Aggregation[]; groupBy: string[] } {
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_AGGREGATIONS)
    throw bad(`aggregations is a list of 1 to ${MAX_AGGREGATIONS} entries`, '/aggregations');
  const aliases = new Set<string>();
  const aggregations = raw.map((a, i): Aggregation => {
    if (typeof a !== 'object' || a === null || Array.isArray(a))
      throw bad('An aggregation is {function, field, alias}', `/aggregations/${i}`);
    const { function: fn, field, alias, ...rest } = a as Record<string, unknown>;
    if (Object.keys(rest).length > 0) throw bad('An aggregation is {function, field, alias}', `/aggregations/${i}`);
    if (!AGGREGATE_FUNCTIONS.includes(fn as AggregateFunction)) throw bad('Unknown aggregate function', `/aggregations/${i}/function`);
    if (field !== undefined && (typeof field !== 'string' || !isSafeName(field))) throw bad('Invalid field', `/aggregations/${i}/field`);
    if (fn !== 'count' && field === undefined) throw bad('This function needs a field', `/aggregations/${i}/field`);
    if (typeof alias !== 'string' || !/^[a-z][a-zA-Z0-9_]{0,62}$/.test(alias) || aliases.has(alias))
      throw bad('alias must be a unique plain identifier', `/aggregations/${i}/alias`);
    aliases.add(alias);
    return { function: fn as AggregateFunction, ...(field !== undefined ? { field: field as string } : {}), alias };
  });
  let groupBy: string[] = [];
  if (groupByRaw !== undefined) {
    if (!Array.isArray(groupByRaw) || groupByRaw.length > MAX_GROUP_BY || groupByRaw.some((g) => typeof g !== 'string' || !isSafeName(g)))
      throw bad(`groupBy is a list of at most ${MAX_GROUP_BY} fields`, '/groupBy');
    groupBy = groupByRaw as string[];
    for (const g of groupBy) if (aliases.has(g)) throw bad('An alias may not shadow a groupBy field', '/groupBy');
  }
  return { aggregations, groupBy };
}

const NUMERIC = new Set(['double precision', 'integer']);

/**
 * Aggregates over the rows the caller may read: the same row filter AND where, in one statement.
 * Every aggregated or grouped field must be readable (R5: 403 otherwise, never a silent skip).
 */
export function buildAggregateSql(
  decision: Decision,
  def: StoredObjectDefinition,
  orgId: string,
  spec: ListSpec,
  aggregations: Aggregation[],
  groupBy: string[],
): { text: string; params: unknown[] } {
  const touched = [...groupBy, ...aggregations.flatMap((a) => (a.field ? [a.field] : []))];
  decision.assertReadable(spec.object, touched);
  const filter = decision.listFilter('read', spec.object, spec.where ?? {}, { alias: 't' });
  const params: unknown[] = [...filter.params];
  const colType = (field: string): string => {
    const f = def.fields.find((x) => x.name === field);
    return f ? columnType(f.type) : field === 'version' ? 'integer' : 'other';
  };
  const select = aggregations.map((a) => {
    const col = a.field ? `t.${quoteIdent(a.field)}` : '';
    if ((a.function === 'sum' || a.function === 'avg') && !NUMERIC.has(colType(a.field!)))
      throw new PolicyError('invalid_value', { field: a.field, reason: 'not_numeric' });
    const expr =
      a.function === 'count'
        ? a.field
          ? `count(${col})`
          : 'count(*)'
        : a.function === 'count_distinct'
          ? `count(DISTINCT ${col})`
          : `${a.function}(${col})`;
    return `${expr} AS ${quoteIdent(a.alias)}`;
  });
  const groups = groupBy.map((g) => `t.${quoteIdent(g)}`);
  params.push(spec.limit);
  const text =
    `SELECT ${[...groups, ...select].join(', ')} FROM ${recordTable(orgId, spec.object)} t WHERE ${sqlOfPlan(filter.plan)}` +
    (groups.length > 0 ? ` GROUP BY ${groups.join(', ')} ORDER BY ${groups.map((g) => `${g} ASC NULLS LAST`).join(', ')}` : '') +
    ` LIMIT $${params.length}`;
  return { text, params };
}

export function aggregateRows(
  def: StoredObjectDefinition,
  rows: Array<Record<string, unknown>>,
  aggregations: Aggregation[],
  groupBy: string[],
): Array<Record<string, unknown>> {
  return rows.map((row) => {
    const out = toApiRecord(def, row, groupBy);
    for (const a of aggregations) {
      const v = row[a.alias];
      out[a.alias] =
        typeof v === 'string' && /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(v) && a.function !== 'min' && a.function !== 'max'
          ? Number(v)
          : v instanceof Date
            ? v.toISOString()
            : v;
    }
    return out;
  });
}
