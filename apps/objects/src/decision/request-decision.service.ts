import { Inject, Injectable } from '@nestjs/common';
import { policySnapshot, type PrincipalSnapshot } from '@custodian/contracts';
import { compileDecision, type Decision } from '@custodian/policy';
import { DirectoryReplicaService } from '../directory/directory-replica.service';
import { ObjectCatalogService, STAMP_SQL, type OrgCatalog } from '../metadata/object-catalog.service';
import { sqlSchemaFor } from '../metadata/org-tables';
import { RECORD_WHERE_LIMITS } from '../records/record-query';

export interface GovernedContext {
  readonly principal: PrincipalSnapshot;
  readonly decision: Decision;
  readonly catalog: OrgCatalog;
}

const MAX_ENTRIES = 5000;

/**
 * Turns a request's principal into a Decision. Cached per credential (session, API key or the
 * delegated agent of one), policy version and metadata stamp — not per user, because two
 * credentials of one user carry different permission sets (scoped API keys, agents).
 */
@Injectable()
export class RequestDecisionService {
  private readonly cache = new Map<string, Decision>();
  /**
   * The last context made for a principal snapshot object (the principal cache hands the same
   * object to every request of a credential until it refetches): the same snapshot on the same
   * catalog object is the same decision, without building the key again. Snapshots are never
   * changed after they are made; the entry goes with its snapshot.
   */
  private readonly lastContext = new WeakMap<PrincipalSnapshot, GovernedContext>();

  constructor(
    @Inject(DirectoryReplicaService) private readonly replica: DirectoryReplicaService,
    @Inject(ObjectCatalogService) private readonly catalogs: ObjectCatalogService,
  ) {}

  /** Waits for a fresh replica (R10) and the current metadata: one round trip when nothing changed. */
  async forPrincipal(principal: PrincipalSnapshot): Promise<GovernedContext> {
    const stamp = await this.replica.freshWith(principal.orgId, principal.policyVersion, STAMP_SQL);
    return this.decide(principal, await this.catalogs.get(principal.orgId, undefined, stamp));
  }

  /**
   * The context from this process's last-read metadata, without any round trip — NOT yet proven
   * fresh. Only for statements that read the metadata stamp and the replica state themselves, in
   * the same snapshot as the rows, and start over with `forPrincipal` when either does not match
   * (RecordQueryService.list). Undefined when nothing is cached for the org.
   */
  unverified(principal: PrincipalSnapshot): GovernedContext | undefined {
    const catalog = this.catalogs.peek(principal.orgId);
    return catalog ? this.decide(principal, catalog) : undefined;
  }

  private decide(principal: PrincipalSnapshot, catalog: OrgCatalog): GovernedContext {
    const last = this.lastContext.get(principal);
    if (last && last.catalog === catalog) return last;
    const credential = principal.sessionId
      ? `s:${principal.sessionId}`
      : principal.apiKeyId
        ? `k:${principal.apiKeyId}`
        : `u:${principal.userId}`;
    const key = [
      principal.orgId,
      principal.userId,
      credential,
      principal.agent
        ? `${principal.agent.clientId}:${[...principal.agent.scopes].sort().join(',')}:${(principal.agent.objects ?? []).join(',')}`
        : '',
      (principal.apiKeyScopes ?? []).join(','),
      principal.policyVersion,
      catalog.stamp,
    ].join('|');
    let decision = this.cache.get(key);
    if (!decision) {
      decision = compileDecision(policySnapshot(principal), catalog.policy, {
        sqlSchema: sqlSchemaFor(principal.orgId),
        whereLimits: RECORD_WHERE_LIMITS,
      });
      if (this.cache.size >= MAX_ENTRIES) this.cache.clear();
      this.cache.set(key, decision);
    }
    const ctx: GovernedContext = Object.freeze({ principal, decision, catalog });
    this.lastContext.set(principal, ctx);
    return ctx;
  }
}
