import { quoteIdent, type SqlParams } from '../sql/sql-params';
import { ALWAYS, NEVER, conditional, sqlOfPlan, type SqlPlan } from '../sql/sql-plan';
import type { WhereNode } from './where.ast';

export interface WhereSqlContext {
  readonly params: SqlParams;
  /** SQL expression of a field's column for the record alias in scope. */
  column(field: string): string;
}

function isText(type: string): boolean {
  return type === 'string' || type === 'text';
}

function leafSql(node: Extract<WhereNode, { kind: 'leaf' }>, ctx: WhereSqlContext): string {
  const col = ctx.column(node.field);
  // Ordering of text uses the "C" collation (code point order), exactly like the in-memory evaluator.
  const ordered = isText(node.fieldType) ? `${col} COLLATE "C"` : col;
  // An integer parameter would take the column's type, and a valid filter value beyond a 4-byte
  // column's range would fail the statement; as bigint it simply compares (cross-type operators
  // keep the index usable).
  const integer = node.fieldType === 'integer';
  const param = (): string => `${ctx.params.add(node.value)}${integer ? '::bigint' : ''}`;
  switch (node.op) {
    case 'null':
      return `${col} IS NULL`;
    case 'eq':
      return `${col} = ${param()}`;
    case 'in':
      return `${col} = ANY(${ctx.params.add(node.value)}${integer ? '::bigint[]' : ''})`;
    case 'gt':
      return `${ordered} > ${param()}`;
    case 'gte':
      return `${ordered} >= ${param()}`;
    case 'lt':
      return `${ordered} < ${param()}`;
    case 'lte':
      return `${ordered} <= ${param()}`;
    case 'contains':
      return `strpos(${col}, ${ctx.params.add(node.value)}) > 0`;
    case 'startsWith':
      return `starts_with(${col}, ${ctx.params.add(node.value)})`;
    case 'endsWith': {
      const p = ctx.params.add(node.value);
      return `right(${col}, char_length(${p})) = ${p}`;
    }
  }
}

/**
 * Compiles a filter to a typed plan: a constant filter is `always` / `never`, anything else a
 * PostgreSQL predicate that is never NULL where it matters. Negations are pushed to the leaves; a
 * positive leaf may yield NULL on a NULL column, which AND/OR/WHERE treat as false (monotone), and a
 * negated leaf is wrapped in `IS NOT TRUE`, so NULL → true — the MongoDB meaning of
 * `$ne`/`$nin`/`$not` on null or missing values. Positive leaves stay index-friendly. A constant
 * inside AND/OR is written as TRUE / FALSE there (sqlOfPlan), so the SQL is what it always was.
 */
export function compileWhereSql(node: WhereNode, ctx: WhereSqlContext, negate = false): SqlPlan {
  switch (node.kind) {
    case 'const':
      return node.value !== negate ? ALWAYS : NEVER;
    case 'not':
      return compileWhereSql(node.child, ctx, !negate);
    case 'and':
    case 'or': {
      const conjunction = (node.kind === 'and') !== negate;
      const parts = node.children.map((child) => sqlOfPlan(compileWhereSql(child, ctx, negate)));
      return conditional(`(${parts.join(conjunction ? ' AND ' : ' OR ')})`);
    }
    case 'leaf': {
      if (node.op === 'null') {
        const col = ctx.column(node.field);
        return conditional(negate ? `${col} IS NOT NULL` : `${col} IS NULL`);
      }
      const sql = leafSql(node, ctx);
      return conditional(negate ? `(${sql}) IS NOT TRUE` : `(${sql})`);
    }
  }
}

export function columnRef(alias: string, column: string): string {
  return `${quoteIdent(alias)}.${quoteIdent(column)}`;
}
