import { Inject, Injectable } from '@nestjs/common';
import { SERVICE_DATA_SOURCE } from '@custodian/platform';
import { compileCatalog, type ObjectSecurity, type PolicyCatalog } from '@custodian/policy';
import type { DataSource, EntityManager } from 'typeorm';
import { policyType } from './field-types';
import type { StoredObjectDefinition } from './object-definition.schema';

export interface OrgCatalog {
  /** Changes whenever any object definition of the org changes. */
  readonly stamp: string;
  readonly definitions: ReadonlyMap<string, StoredObjectDefinition>;
  readonly policy: PolicyCatalog;
}

/** The policy library's view of a stored definition (its ObjectSecurity shape). */
export function toObjectSecurity(def: StoredObjectDefinition): ObjectSecurity {
  const masterDetail = def.fields.find((f) => f.type === 'master_detail');
  return {
    name: def.name,
    ...(def.app ? { app: def.app } : {}),
    fields: def.fields.map((f) => ({
      name: f.name,
      type: policyType(f.type),
      ...(f.sensitive ? { sensitive: true } : {}),
      ...(f.reference ? { reference: f.reference } : {}),
    })),
    sharingModel: def.sharingModel,
    ...(def.sharingModel === 'controlled_by_parent' && masterDetail ? { masterDetailField: masterDetail.name } : {}),
    grantAccessUsingHierarchy: def.grantAccessUsingHierarchy,
    sharingRules: def.sharingRules as ObjectSecurity['sharingRules'],
  };
}

const MAX_CACHED_ORGS = 1000;

/** A value that changes whenever any definition of the org ($1) changes; usable as a scalar subquery. */
export const STAMP_SQL = `(SELECT count(*)::text || ':' || coalesce(max(updated_at)::text, '') || ':' || coalesce(sum(version), 0)::text
    FROM object_definition WHERE org_id = $1)`;

/**
 * The org's object definitions compiled into a policy catalog, cached per org and re-read when the
 * org's metadata stamp changes (one small query per request, so replicas never serve stale metadata).
 */
@Injectable()
export class ObjectCatalogService {
  private readonly cache = new Map<string, OrgCatalog>();

  constructor(@Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource) {}

  /** The org's catalog as last read by this process, without asking the database (may be stale). */
  peek(orgId: string): OrgCatalog | undefined {
    return this.cache.get(orgId);
  }

  async get(orgId: string, manager: EntityManager = this.ds.manager, knownStamp?: string): Promise<OrgCatalog> {
    let stamp = knownStamp;
    if (stamp === undefined) {
      const rows: Array<{ stamp: string | null }> = await manager.query(`SELECT ${STAMP_SQL} AS stamp`, [orgId]);
      stamp = rows[0]?.stamp ?? '';
    }
    const cached = this.cache.get(orgId);
    if (cached && cached.stamp === stamp) return cached;
    const defs: Array<{ definition: StoredObjectDefinition }> = await manager.query(
      'SELECT definition FROM object_definition WHERE org_id = $1 ORDER BY name',
      [orgId],
    );
    const catalog = build(
      stamp,
      defs.map((d) => d.definition),
    );
    if (this.cache.size >= MAX_CACHED_ORGS) this.cache.clear();
    this.cache.set(orgId, catalog);
    return catalog;
  }
}

export function build(stamp: string, definitions: StoredObjectDefinition[]): OrgCatalog {
  const byName = new Map(definitions.map((d) => [d.name, d]));
  return { stamp, definitions: byName, policy: compileCatalog(definitions.map(toObjectSecurity)) };
}
