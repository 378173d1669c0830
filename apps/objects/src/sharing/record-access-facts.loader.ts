import {
  MAX_PARENT_DEPTH,
  qualifiedName,
  type PolicyCatalog,
  type PolicySqlSchema,
  type RecordAccessFacts,
  type RecordRow,
  type RecordShare,
} from '@custodian/policy';

/** Runs one parameterized statement (a DataSource, an EntityManager or a pg client adapter). */
export type FactsQuery = (text: string, params: unknown[]) => Promise<Record<string, unknown>[]>;

/** One record and what the in-memory check needs to know about it. */
export interface LoadedRecordFacts {
  readonly record: RecordRow;
  readonly facts: RecordAccessFacts;
}

const NONE: ReadonlySet<string> = new Set();

/** Row values as the in-memory evaluator compares them (timestamps as ISO strings). */
function plain(row: Record<string, unknown>): RecordRow {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) out[k] = v instanceof Date ? v.toISOString() : v;
  return out;
}

/** Facts over exactly the rows read for one record; anything not read is absent (no access from it). */
class LoadedFacts implements RecordAccessFacts {
  constructor(
    private readonly records: ReadonlyMap<string, RecordRow>,
    private readonly shares: ReadonlyMap<string, RecordShare[]>,
    private readonly roles: ReadonlyMap<string, string>,
    private readonly ancestors: ReadonlyMap<string, ReadonlySet<string>>,
    private readonly groups: ReadonlyMap<string, ReadonlySet<string>>,
  ) {}

  roleOf(userId: string): string | null {
    return this.roles.get(userId) ?? null;
  }

  groupsOf(userId: string): ReadonlySet<string> {
    return this.groups.get(userId) ?? NONE;
  }

  ancestorsOf(roleId: string): ReadonlySet<string> {
    return this.ancestors.get(roleId) ?? NONE;
  }

  sharesOf(object: string, recordId: string): readonly RecordShare[] {
    return this.shares.get(`${object}\u0000${recordId}`) ?? [];
  }

  record(object: string, id: string): RecordRow | undefined {
    return this.records.get(`${object}\u0000${id}`);
  }
}

/**
 * The facts of one record for explain: the record and its chain of master records, their explicit
 * shares, their owners' roles and groups, and those roles' ancestors. Everything is read from the
 * tables the SQL row filter reads, named by the same PolicySqlSchema (the role closure, not the
 * role tree), and the chain is followed as deep as the filter follows it — so explain, run on these
 * facts, evaluates what the filter evaluated. Record columns carry their fields' names (as in the
 * objects service). Undefined when the record does not exist in the org.
 */
export async function loadRecordFacts(
  query: FactsQuery,
  schema: PolicySqlSchema,
  catalog: PolicyCatalog,
  orgId: string,
  object: string,
  id: string,
): Promise<LoadedRecordFacts | undefined> {
  const dir = (table: string) => qualifiedName(schema.schema, table);
  const records = new Map<string, RecordRow>();
  const shares = new Map<string, RecordShare[]>();
  const owners = new Set<string>();
  let first: RecordRow | undefined;
  let current: { object: string; id: string } | undefined = { object, id };
  for (let depth = 0; current && depth <= MAX_PARENT_DEPTH; depth++) {
    const key = `${current.object}\u0000${current.id}`;
    if (records.has(key)) break;
    const rows = await query(`SELECT * FROM ${schema.recordTable(current.object)} WHERE id = $1 AND org_id = $2`, [current.id, orgId]);
    if (rows.length === 0) break;
    const row = plain(rows[0]);
    first ??= row;
    records.set(key, row);
    const owner = row.owner_id;
    if (typeof owner === 'string') owners.add(owner);
    const shareRows = await query(
      `SELECT grantee_type, grantee_id, access_level FROM ${dir(schema.recordSharesTable)} WHERE org_id = $1 AND object_name = $2 AND record_id = $3`,
      [orgId, current.object, current.id],
    );
    shares.set(
      key,
      shareRows.map((s) => ({
        object: current!.object,
        recordId: current!.id,
        granteeType: s.grantee_type as RecordShare['granteeType'],
        granteeId: String(s.grantee_id),
        accessLevel: s.access_level as RecordShare['accessLevel'],
      })),
    );
    const parent: { object: string; field: string } | undefined = catalog.get(current.object)?.parent;
    const parentId: unknown = parent ? row[parent.field] : undefined;
    current = parent && typeof parentId === 'string' ? { object: parent.object, id: parentId } : undefined;
  }
  if (!first) return undefined;

  const ownerIds = [...owners];
  const roles = new Map<string, string>();
  for (const r of await query(`SELECT user_id, role_id FROM ${dir(schema.userRolesTable)} WHERE org_id = $1 AND user_id = ANY($2)`, [
    orgId,
    ownerIds,
  ]))
    roles.set(String(r.user_id), String(r.role_id));
  const ancestors = new Map<string, Set<string>>();
  for (const r of await query(
    `SELECT descendant_id, ancestor_id FROM ${dir(schema.roleClosureTable)} WHERE org_id = $1 AND descendant_id = ANY($2) AND depth > 0`,
    [orgId, [...new Set(roles.values())]],
  )) {
    const role = String(r.descendant_id);
    let set = ancestors.get(role);
    if (!set) ancestors.set(role, (set = new Set()));
    set.add(String(r.ancestor_id));
  }
  const groups = new Map<string, Set<string>>();
  for (const m of await query(`SELECT group_id, user_id FROM ${dir(schema.groupMembersTable)} WHERE org_id = $1 AND user_id = ANY($2)`, [
    orgId,
    ownerIds,
  ])) {
    const user = String(m.user_id);
    let set = groups.get(user);
    if (!set) groups.set(user, (set = new Set()));
    set.add(String(m.group_id));
  }
  return { record: first, facts: new LoadedFacts(records, shares, roles, ancestors, groups) };
}
