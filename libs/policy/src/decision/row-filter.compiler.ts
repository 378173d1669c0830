import { columnRef, compileWhereSql } from '../objectql/where.sql-compiler';
import { SqlParams, quoteIdent, qualifiedName } from '../sql/sql-params';
import type { PolicySqlSchema } from '../sql/sql-schema.config';
import { ALWAYS, NEVER, anyOf, conditional, sqlOfPlan, type SqlPlan } from '../sql/sql-plan';
import type { LevelRank } from './access-level';
import type { PrincipalGrants } from './principal-grants';
import { MAX_PARENT_DEPTH } from './record-access.evaluator';

interface FilterContext {
  readonly grants: PrincipalGrants;
  readonly schema: PolicySqlSchema;
  readonly params: SqlParams;
}

function col(ctx: FilterContext, object: string, alias: string, field: string): string {
  return columnRef(alias, ctx.schema.fieldColumn(object, field));
}

function dirTable(ctx: FilterContext, table: string): string {
  return qualifiedName(ctx.schema.schema, table);
}

/**
 * A semi-join of a record column against a subquery over directory tables. `in` form: the subquery
 * is uncorrelated (filtered by the org parameter) so PostgreSQL hashes it once; `exists` form: the
 * same condition correlated on the record's column. Neither can drop or duplicate record rows.
 */
function semiJoin(
  ctx: FilterContext,
  object: string,
  alias: string,
  column: string,
  from: string,
  selected: string,
  orgColumn: string,
  where: string,
): string {
  if (ctx.schema.semiJoin === 'exists') {
    return `EXISTS (SELECT 1 FROM ${from} WHERE ${orgColumn} = ${col(ctx, object, alias, 'org_id')} AND ${selected} = ${col(ctx, object, alias, column)} AND ${where})`;
  }
  return `${col(ctx, object, alias, column)} IN (SELECT ${selected} FROM ${from} WHERE ${orgColumn} = ${ctx.params.shared(ctx.grants.orgId)} AND ${where})`;
}

/** The record's owner has a role at or below `roleParam` (properOnly → strictly below). */
function ownerRoleBelow(ctx: FilterContext, object: string, alias: string, roleParam: string, properOnly: boolean, n: number): string {
  const ur = `ur${n}`;
  const rc = `rc${n}`;
  const from =
    `${dirTable(ctx, ctx.schema.userRolesTable)} ${ur}` +
    ` JOIN ${dirTable(ctx, ctx.schema.roleClosureTable)} ${rc} ON ${rc}.org_id = ${ur}.org_id AND ${rc}.descendant_id = ${ur}.role_id`;
  return semiJoin(
    ctx,
    object,
    alias,
    'owner_id',
    from,
    `${ur}.user_id`,
    `${ur}.org_id`,
    `${rc}.ancestor_id = ${roleParam}${properOnly ? ` AND ${rc}.depth > 0` : ''}`,
  );
}

/**
 * SQL predicate: the principal's R4 level on a row of `object` (alias) is ≥ `need`. Mirrors
 * record-access.evaluator.ts clause by clause. Directory and shares are reached only through
 * semi-joins (IN-subquery or EXISTS, see PolicySqlSchema.semiJoin) — never joins that drop or
 * duplicate rows, never id lists that grow with data.
 * May be NULL only where the in-memory check is false (positive context: AND/OR/WHERE treat it so).
 */
function levelAtLeast(ctx: FilterContext, objectName: string, alias: string, need: LevelRank, depth: number): SqlPlan {
  const grant = ctx.grants.objects.get(objectName);
  if (!grant || depth > MAX_PARENT_DEPTH) return NEVER;
  if (grant.sources.modifyAll.length > 0) return ALWAYS;
  if (need <= 1 && grant.sources.viewAll.length > 0) return ALWAYS;
  const object = grant.object;
  const p = ctx.params;

  if (object.parent) {
    const parent = object.parent;
    const pa = `p${depth + 1}`;
    const inner = levelAtLeast(ctx, parent.object, pa, need, depth + 1);
    if (inner.kind === 'never') return NEVER;
    const from = `${ctx.schema.recordTable(parent.object)} ${quoteIdent(pa)}`;
    const condition = sqlOfPlan(inner);
    return conditional(
      semiJoin(
        ctx,
        objectName,
        alias,
        parent.field,
        from,
        col(ctx, parent.object, pa, 'id'),
        col(ctx, parent.object, pa, 'org_id'),
        condition,
      ),
    );
  }

  const owd = object.sharingModel === 'public_read_write' ? 2 : object.sharingModel === 'public_read' ? 1 : 0;
  if (owd >= need) return ALWAYS;
  // A criteria rule that matches everything (e.g. `$nin: []`) makes the whole clause TRUE; decide
  // that before any parameter is bound, so no placeholder is left unreferenced.
  if (
    grant.rules.some(
      ({ rule, level }) => level >= need && rule.type === 'criteria' && rule.criteriaNode?.kind === 'const' && rule.criteriaNode.value,
    )
  ) {
    return ALWAYS;
  }

  const parts: SqlPlan[] = [conditional(`${col(ctx, objectName, alias, 'owner_id')} = ${p.shared(ctx.grants.userId)}`)];
  if (object.grantAccessUsingHierarchy && ctx.grants.roleId !== null) {
    parts.push(conditional(ownerRoleBelow(ctx, objectName, alias, p.shared(ctx.grants.roleId), true, depth * 100)));
  }
  let n = depth * 100 + 1;
  for (const { rule, level } of grant.rules) {
    if (level < need) continue;
    if (rule.type === 'criteria') {
      if (!rule.criteriaNode) continue;
      parts.push(compileWhereSql(rule.criteriaNode, { params: p, column: (f) => col(ctx, objectName, alias, f) }));
    } else if (rule.ownedBy.type === 'group') {
      const gm = `gm${n++}`;
      const from = `${dirTable(ctx, ctx.schema.groupMembersTable)} ${gm}`;
      parts.push(
        conditional(
          semiJoin(
            ctx,
            objectName,
            alias,
            'owner_id',
            from,
            `${gm}.user_id`,
            `${gm}.org_id`,
            `${gm}.group_id = ${p.shared(rule.ownedBy.id)}`,
          ),
        ),
      );
    } else if (rule.ownedBy.type === 'role') {
      const ur = `ur${n++}`;
      const from = `${dirTable(ctx, ctx.schema.userRolesTable)} ${ur}`;
      parts.push(
        conditional(
          semiJoin(
            ctx,
            objectName,
            alias,
            'owner_id',
            from,
            `${ur}.user_id`,
            `${ur}.org_id`,
            `${ur}.role_id = ${p.shared(rule.ownedBy.id)}`,
          ),
        ),
      );
    } else {
      parts.push(conditional(ownerRoleBelow(ctx, objectName, alias, p.shared(rule.ownedBy.id), false, n++)));
    }
  }
  if (need <= 2) parts.push(conditional(sharesClause(ctx, objectName, alias, need, depth)));
  return anyOf(parts);
}

function sharesClause(ctx: FilterContext, objectName: string, alias: string, need: LevelRank, depth: number): string {
  const g = ctx.grants;
  const p = ctx.params;
  const s = `s${depth}`;
  const grantee: string[] = [`(${s}.grantee_type = 'user' AND ${s}.grantee_id = ${p.shared(g.userId)})`];
  if (g.groupIds.size > 0) grantee.push(`(${s}.grantee_type = 'group' AND ${s}.grantee_id = ANY(${p.add([...g.groupIds])}))`);
  if (g.roleId !== null) {
    grantee.push(`(${s}.grantee_type = 'role' AND ${s}.grantee_id = ${p.shared(g.roleId)})`);
    grantee.push(`(${s}.grantee_type = 'role_and_subordinates' AND ${s}.grantee_id = ANY(${p.add([...g.roleAndAncestors])}))`);
  }
  const levels = need <= 1 ? `IN ('read', 'edit')` : `= 'edit'`;
  const from = `${dirTable(ctx, ctx.schema.recordSharesTable)} ${s}`;
  return semiJoin(
    ctx,
    objectName,
    alias,
    'id',
    from,
    `${s}.record_id`,
    `${s}.org_id`,
    `${s}.object_name = ${p.shared(objectName)} AND ${s}.access_level ${levels} AND (${grantee.join(' OR ')})`,
  );
}

/**
 * True when the principal's level is ≥ `need` on every row of `object` in its org — the row
 * filter has no condition beyond the tenant wall (view/modify all, a public sharing model, a
 * criteria rule that matches everything).
 */
export function everyRowAtLeast(grants: PrincipalGrants, schema: PolicySqlSchema, object: string, need: LevelRank): boolean {
  return levelAtLeast({ grants, schema, params: new SqlParams(0) }, object, 't', need, 0).kind === 'always';
}

/**
 * `alias.org_id = $org AND <level ≥ need>` — the tenant wall is always the first conjunct, so the
 * plan is always a condition.
 */
export function compileRowFilter(
  grants: PrincipalGrants,
  schema: PolicySqlSchema,
  params: SqlParams,
  object: string,
  alias: string,
  need: LevelRank,
): SqlPlan {
  const ctx: FilterContext = { grants, schema, params };
  const tenant = `${col(ctx, object, alias, 'org_id')} = ${params.shared(grants.orgId)}`;
  const access = levelAtLeast(ctx, object, alias, need, 0);
  // Never FALSE in practice (ownership is always a disjunct), but keep the tenant wall regardless.
  if (access.kind === 'never') return conditional(`(${tenant} AND FALSE)`);
  return conditional(access.kind === 'always' ? `(${tenant})` : `(${tenant} AND ${access.sql})`);
}
