import type { RecordShare } from '../model/object-security.schema';
import type { RecordRow } from '../objectql/where.evaluator';

/**
 * What a record check needs to know beyond the principal and the row. These are exactly the facts
 * the SQL row filter reads from the directory and share tables (see sql-schema.config.ts), so an
 * implementation backed by the same data makes the in-memory check and the SQL filter agree.
 */
export interface RecordAccessFacts {
  /** The role of a user in the org (the record owner's role for hierarchy and owner rules). */
  roleOf(userId: string): string | null;
  /** The groups a user belongs to (owner rules "owned by members of group"). */
  groupsOf(userId: string): ReadonlySet<string>;
  /** Proper ancestors of a role (role closure minus the self row). */
  ancestorsOf(roleId: string): ReadonlySet<string>;
  /** Explicit shares on one record. */
  sharesOf(object: string, recordId: string): readonly RecordShare[];
  /** A master record, for controlled_by_parent objects. */
  record(object: string, id: string): RecordRow | undefined;
}

export interface DirectoryData {
  /** userId → roleId */
  readonly userRoles?: Readonly<Record<string, string>> | ReadonlyMap<string, string>;
  /** roleId → parent roleId (the role tree) */
  readonly roleParents?: Readonly<Record<string, string | null>> | ReadonlyMap<string, string | null>;
  /** groupId → member user ids */
  readonly groupMembers?: Readonly<Record<string, readonly string[]>> | ReadonlyMap<string, readonly string[]>;
  readonly shares?: readonly RecordShare[];
  /** object → records (for parent lookups) */
  readonly records?: Readonly<Record<string, readonly RecordRow[]>>;
}

const EMPTY: ReadonlySet<string> = new Set();
const NO_SHARES: readonly RecordShare[] = [];

function entries<V>(source: Readonly<Record<string, V>> | ReadonlyMap<string, V> | undefined): [string, V][] {
  if (!source) return [];
  return source instanceof Map ? [...source.entries()] : Object.entries(source as Record<string, V>);
}

/** RecordAccessFacts over plain in-memory data (tests, scenario tables, small tools). */
export class InMemoryAccessFacts implements RecordAccessFacts {
  private readonly roles = new Map<string, string>();
  private readonly parents = new Map<string, string | null>();
  private readonly groups = new Map<string, Set<string>>();
  private readonly ancestorCache = new Map<string, ReadonlySet<string>>();
  private readonly shares = new Map<string, Map<string, RecordShare[]>>();
  private readonly records = new Map<string, RecordRow>();

  constructor(data: DirectoryData = {}) {
    for (const [user, role] of entries(data.userRoles)) this.roles.set(user, role);
    for (const [role, parent] of entries(data.roleParents)) this.parents.set(role, parent);
    for (const [group, members] of entries(data.groupMembers)) {
      for (const user of members) {
        let set = this.groups.get(user);
        if (!set) this.groups.set(user, (set = new Set()));
        set.add(group);
      }
    }
    for (const share of data.shares ?? []) {
      let byRecord = this.shares.get(share.object);
      if (!byRecord) this.shares.set(share.object, (byRecord = new Map()));
      const list = byRecord.get(share.recordId);
      if (list) list.push(share);
      else byRecord.set(share.recordId, [share]);
    }
    for (const [object, rows] of Object.entries(data.records ?? {})) {
      for (const row of rows) this.records.set(`${object}\u0000${String(row.id)}`, row);
    }
  }

  roleOf(userId: string): string | null {
    return this.roles.get(userId) ?? null;
  }

  groupsOf(userId: string): ReadonlySet<string> {
    return this.groups.get(userId) ?? EMPTY;
  }

  ancestorsOf(roleId: string): ReadonlySet<string> {
    let cached = this.ancestorCache.get(roleId);
    if (!cached) {
      const set = new Set<string>();
      for (let p = this.parents.get(roleId) ?? null; p !== null && !set.has(p) && p !== roleId; p = this.parents.get(p) ?? null) set.add(p);
      this.ancestorCache.set(roleId, (cached = set));
    }
    return cached;
  }

  sharesOf(object: string, recordId: string): readonly RecordShare[] {
    return this.shares.get(object)?.get(recordId) ?? NO_SHARES;
  }

  record(object: string, id: string): RecordRow | undefined {
    return this.records.get(`${object}\u0000${id}`);
  }

  /** Rows of the role-closure table (self rows at depth 0) — what the SQL side needs loaded. */
  closureRows(): { ancestorId: string; descendantId: string; depth: number }[] {
    const roles = new Set<string>([...this.parents.keys(), ...[...this.parents.values()].filter((p): p is string => p !== null)]);
    const rows: { ancestorId: string; descendantId: string; depth: number }[] = [];
    for (const role of roles) {
      rows.push({ ancestorId: role, descendantId: role, depth: 0 });
      let depth = 1;
      for (let p = this.parents.get(role) ?? null; p !== null && p !== role; p = this.parents.get(p) ?? null) {
        rows.push({ ancestorId: p, descendantId: role, depth: depth++ });
        if (depth > 1000) break;
      }
    }
    return rows;
  }
}
