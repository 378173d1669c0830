/**
 * What the SQL planner decided for a predicate: every row (`always`), no row (`never`), or rows
 * matching `sql` (`conditional`). The placeholders in `sql` refer to the SqlParams the plan was
 * compiled with (its values are the plan's parameters, in order). Callers branch on `kind` instead
 * of comparing SQL text with 'TRUE' / 'FALSE'.
 */
export type SqlPlan = { readonly kind: 'always' } | { readonly kind: 'never' } | { readonly kind: 'conditional'; readonly sql: string };

export const ALWAYS: SqlPlan = { kind: 'always' };
export const NEVER: SqlPlan = { kind: 'never' };

export function conditional(sql: string): SqlPlan {
  return { kind: 'conditional', sql };
}

/** The plan of a predicate compiled elsewhere as text (the ObjectQL compiler writes constants as TRUE / FALSE). */
export function planOfSql(sql: string): SqlPlan {
  return sql === 'TRUE' ? ALWAYS : sql === 'FALSE' ? NEVER : conditional(sql);
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
