/**
 * What the SQL planner decided for a predicate: every row (`always`), no row (`never`), or rows
 * matching `sql` (`conditional`). The placeholders in `sql` refer to the SqlParams the plan was
 * compiled with (its values are the plan's parameters, in order). The compilers (row filters and
 * the ObjectQL where compiler) answer plans, and SQL text is written only at the edge (sqlOfPlan),
 * so callers branch on `kind` instead of comparing SQL text with 'TRUE' / 'FALSE'.
 */
export type SqlPlan = { readonly kind: 'always' } | { readonly kind: 'never' } | { readonly kind: 'conditional'; readonly sql: string };

export const ALWAYS: SqlPlan = { kind: 'always' };
export const NEVER: SqlPlan = { kind: 'never' };

/**
 * A plan with the values its placeholders bind, in order: what Decision.rowFilter / listFilter
 * answer. A caller that splices it into a statement writes `sqlOfPlan(filter.plan)` and appends
 * `filter.params` to its own; a `never` filter binds nothing (the caller may skip the statement).
 */
export interface SqlFilter {
  readonly plan: SqlPlan;
  readonly params: readonly unknown[];
}

/** The filter that selects no row (no parameters). */
export const NEVER_FILTER: SqlFilter = Object.freeze({ plan: NEVER, params: Object.freeze([]) });

export function conditional(sql: string): SqlPlan {
  return { kind: 'conditional', sql };
}

/** The plan as a SQL boolean expression. */
export function sqlOfPlan(plan: SqlPlan): string {
  return plan.kind === 'always' ? 'TRUE' : plan.kind === 'never' ? 'FALSE' : plan.sql;
}

/** OR of plans: always if any is, never if all are, else the conditional parts (parenthesised when more than one). */
export function anyOf(plans: readonly SqlPlan[]): SqlPlan {
  if (plans.some((p) => p.kind === 'always')) return ALWAYS;
  const useful = plans.filter((p): p is { kind: 'conditional'; sql: string } => p.kind === 'conditional');
  if (useful.length === 0) return NEVER;
  return useful.length === 1 ? useful[0] : conditional(`(${useful.map((p) => p.sql).join(' OR ')})`);
}
