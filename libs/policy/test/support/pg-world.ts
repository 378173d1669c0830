import type { Client } from 'pg';
import type { FieldType, InMemoryAccessFacts, ObjectSecurity, RecordRow, RecordShare } from '@custodian/policy';

/**
 * Creates the tables the row filter expects (docs/policy.md, "SQL table shapes") with the default
 * names, and loads in-memory worlds into them — the same data the in-memory check sees.
 */
const SQL_TYPE: Record<FieldType, string> = {
  string: 'text',
  text: 'text',
  lookup: 'text',
  master_detail: 'text',
  integer: 'bigint',
  number: 'double precision',
  boolean: 'boolean',
  datetime: 'timestamptz',
};

export const DIRECTORY_DDL = `
  CREATE TABLE user_roles (org_id text NOT NULL, user_id text NOT NULL, role_id text NOT NULL, PRIMARY KEY (org_id, user_id));
  CREATE TABLE role_closure (org_id text NOT NULL, ancestor_id text NOT NULL, descendant_id text NOT NULL, depth int NOT NULL,
    PRIMARY KEY (org_id, ancestor_id, descendant_id));
  CREATE INDEX role_closure_descendant ON role_closure (org_id, descendant_id);
  CREATE TABLE group_members (org_id text NOT NULL, group_id text NOT NULL, user_id text NOT NULL, PRIMARY KEY (org_id, group_id, user_id));
  CREATE INDEX group_members_user ON group_members (org_id, user_id);
  CREATE TABLE record_shares (org_id text NOT NULL, object_name text NOT NULL, record_id text NOT NULL,
    grantee_type text NOT NULL CHECK (grantee_type IN ('user', 'group', 'role', 'role_and_subordinates')),
    grantee_id text NOT NULL, access_level text NOT NULL CHECK (access_level IN ('read', 'edit')));
  CREATE INDEX record_shares_record ON record_shares (org_id, object_name, record_id);
  CREATE INDEX record_shares_grantee ON record_shares (org_id, grantee_type, grantee_id);
`;

export function recordTableDdl(object: Pick<ObjectSecurity, 'name' | 'fields'>): string {
  const cols = object.fields.map((f) => `, "${f.name}" ${SQL_TYPE[f.type]}`).join('');
  return `CREATE TABLE "obj_${object.name}" (id text PRIMARY KEY, org_id text NOT NULL, owner_id text, created_by text, created_at timestamptz,
    updated_by text, updated_at timestamptz, version int${cols});
    CREATE INDEX "obj_${object.name}_org_owner" ON "obj_${object.name}" (org_id, owner_id);`;
}

export async function createTables(client: Client, objects: readonly Pick<ObjectSecurity, 'name' | 'fields'>[]): Promise<void> {
  await client.query(DIRECTORY_DDL);
  for (const object of objects) await client.query(recordTableDdl(object));
}

export interface WorldData {
  orgId: string;
  userRoles: Record<string, string>;
  groupMembers: Record<string, string[]>;
  facts: InMemoryAccessFacts;
  shares: readonly RecordShare[];
  records: Record<string, readonly RecordRow[]>;
}

/** Loads one org's directory, shares and records with one statement per table. */
export async function loadWorld(client: Client, world: WorldData): Promise<void> {
  const org = world.orgId;
  const json = (rows: unknown[]) => JSON.stringify(rows);
  await client.query(`INSERT INTO user_roles SELECT * FROM json_populate_recordset(NULL::user_roles, $1)`, [
    json(Object.entries(world.userRoles).map(([user_id, role_id]) => ({ org_id: org, user_id, role_id }))),
  ]);
  await client.query(`INSERT INTO role_closure SELECT * FROM json_populate_recordset(NULL::role_closure, $1)`, [
    json(world.facts.closureRows().map((r) => ({ org_id: org, ancestor_id: r.ancestorId, descendant_id: r.descendantId, depth: r.depth }))),
  ]);
  await client.query(`INSERT INTO group_members SELECT * FROM json_populate_recordset(NULL::group_members, $1)`, [
    json(
      Object.entries(world.groupMembers).flatMap(([group_id, users]) =>
        [...new Set(users)].map((user_id) => ({ org_id: org, group_id, user_id })),
      ),
    ),
  ]);
  await client.query(`INSERT INTO record_shares SELECT * FROM json_populate_recordset(NULL::record_shares, $1)`, [
    json(
      world.shares.map((s) => ({
        org_id: org,
        object_name: s.object,
        record_id: s.recordId,
        grantee_type: s.granteeType,
        grantee_id: s.granteeId,
        access_level: s.accessLevel,
      })),
    ),
  ]);
  for (const [object, rows] of Object.entries(world.records)) {
    await client.query(`INSERT INTO "obj_${object}" SELECT * FROM json_populate_recordset(NULL::"obj_${object}", $1)`, [json([...rows])]);
  }
}
