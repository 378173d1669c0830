import { qualifiedName } from './sql-params';

/**
 * Where the row filter finds records and the directory. The objects service owns these tables;
 * everything is configurable, the defaults are documented in docs/policy.md.
 *
 *  record table (one per object)      id, org_id, owner_id, <field columns>
 *  user_roles                         org_id, user_id, role_id              (one row per user with a role)
 *  role_closure                       org_id, ancestor_id, descendant_id, depth (depth 0 = self row)
 *  group_members                      org_id, group_id, user_id
 *  record_shares                      org_id, object_name, record_id, grantee_type, grantee_id, access_level
 */
export interface PolicySqlSchema {
  /** Schema holding the directory and share tables (undefined → search_path). */
  readonly schema?: string;
  readonly userRolesTable: string;
  readonly roleClosureTable: string;
  readonly groupMembersTable: string;
  readonly recordSharesTable: string;
  /** Quoted, qualified table of an object's records. */
  recordTable(object: string): string;
  /** Column name (unquoted) holding a field; system fields use their own names by default. */
  fieldColumn(object: string, field: string): string;
  /**
   * How directory/share lookups are written. `in` (default): uncorrelated semi-joins
   * `t.id IN (SELECT record_id FROM record_shares WHERE …principal…)`, which PostgreSQL runs as a
   * hashed subplan built once per query through the grantee index. `exists`: correlated EXISTS.
   * Both are semi-joins (no lost or duplicated rows) and both are covered by the differential test.
   */
  readonly semiJoin: 'in' | 'exists';
}

export interface PolicySqlSchemaOptions {
  schema?: string;
  recordsSchema?: string;
  userRolesTable?: string;
  roleClosureTable?: string;
  groupMembersTable?: string;
  recordSharesTable?: string;
  /** Record table name for an object; default `obj_<object>`. */
  recordTableName?: (object: string) => string;
  fieldColumn?: (object: string, field: string) => string;
  semiJoin?: 'in' | 'exists';
}

export function createSqlSchema(options: PolicySqlSchemaOptions = {}): PolicySqlSchema {
  const recordTableName = options.recordTableName ?? ((object: string) => `obj_${object}`);
  const recordsSchema = options.recordsSchema ?? options.schema;
  return {
    schema: options.schema,
    userRolesTable: options.userRolesTable ?? 'user_roles',
    roleClosureTable: options.roleClosureTable ?? 'role_closure',
    groupMembersTable: options.groupMembersTable ?? 'group_members',
    recordSharesTable: options.recordSharesTable ?? 'record_shares',
    recordTable: (object) => qualifiedName(recordsSchema, recordTableName(object)),
    fieldColumn: options.fieldColumn ?? ((_object, field) => field),
    semiJoin: options.semiJoin ?? 'in',
  };
}

export const DEFAULT_SQL_SCHEMA: PolicySqlSchema = createSqlSchema();
