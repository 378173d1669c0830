import { createSqlSchema, quoteIdent, type PolicySqlSchema } from '@custodian/policy';

/** Record tables and directory tables live in the service's own schema (`objects`). */
export const OBJECTS_SCHEMA = 'objects';

/** Hex of the org id, used in the names of the org's record tables. */
export function orgHex(orgId: string): string {
  return orgId.replace(/-/g, '').toLowerCase();
}

/**
 * One table per (org, object): `objects.r_<org hex>_<object>`. Keeping every org's records in
 * separate tables is a second tenant wall under the row filter's `org_id = $org` (R1).
 */
export function recordTableName(orgId: string, object: string): string {
  return `r_${orgHex(orgId)}_${object}`;
}

export function recordTable(orgId: string, object: string): string {
  return `${quoteIdent(OBJECTS_SCHEMA)}.${quoteIdent(recordTableName(orgId, object))}`;
}

const schemas = new Map<string, PolicySqlSchema>();

/** The policy SQL identifiers for one org (record tables per org; shared directory tables). */
export function sqlSchemaFor(orgId: string): PolicySqlSchema {
  let schema = schemas.get(orgId);
  if (!schema) {
    schema = createSqlSchema({ schema: OBJECTS_SCHEMA, recordTableName: (object) => recordTableName(orgId, object) });
    if (schemas.size > 10_000) schemas.clear();
    schemas.set(orgId, schema);
  }
  return schema;
}
