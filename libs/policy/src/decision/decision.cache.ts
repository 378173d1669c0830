import { PolicyError } from '../errors/policy.error';
import type { PrincipalSnapshot } from '../model/principal-snapshot.schema';
import { compileDecision, type CompileOptions } from './decision.compiler';
import type { Decision } from './decision';
import type { PolicyCatalog } from './policy-catalog';

export interface DecisionCacheStats {
  hits: number;
  misses: number;
  /** Total and last compile time, microseconds. */
  buildMicrosTotal: number;
  buildMicrosLast: number;
  size: number;
}

export interface DecisionCacheOptions extends CompileOptions {
  readonly maxEntries?: number;
}

interface Entry {
  readonly decision: Decision;
  readonly catalog: PolicyCatalog;
}

function principalKey(s: PrincipalSnapshot): string {
  const agent = s.agent
    ? `${s.agent.clientId}|${[...s.agent.scopes].sort().join(',')}|${s.agent.objects ? [...s.agent.objects].sort().join(',') : '*'}`
    : '-';
  return `${s.orgId}\u0000${s.userId}\u0000${agent}`;
}

/**
 * Compiled decisions per (principal, agent delegation), valid for one policy version (R10): a
 * snapshot with a newer version replaces the entry; a snapshot older than a version already seen
 * for the org — from a snapshot or from a revocation event via `noteVersion` — is refused with
 * `stale_policy` instead of being decided on. Bounded LRU.
 */
export class DecisionCache {
  private readonly entries = new Map<string, Entry>();
  private readonly orgVersions = new Map<string, number>();
  private readonly maxEntries: number;
  readonly stats: DecisionCacheStats = { hits: 0, misses: 0, buildMicrosTotal: 0, buildMicrosLast: 0, size: 0 };

  constructor(private readonly options: DecisionCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 10_000;
  }

  /** Record that the org's policy changed to `version` (bus event); older decisions are dropped. */
  noteVersion(orgId: string, version: number): void {
    if (version > (this.orgVersions.get(orgId) ?? -1)) this.orgVersions.set(orgId, version);
  }

  /** The highest policy version known for the org. */
  knownVersion(orgId: string): number | undefined {
    return this.orgVersions.get(orgId);
  }

  get(snapshot: PrincipalSnapshot, catalog: PolicyCatalog): Decision {
    const known = this.orgVersions.get(snapshot.orgId);
    if (known !== undefined && snapshot.policyVersion < known) {
      throw new PolicyError('stale_policy', { orgId: snapshot.orgId, snapshotVersion: snapshot.policyVersion, knownVersion: known });
    }
    this.noteVersion(snapshot.orgId, snapshot.policyVersion);
    const key = principalKey(snapshot);
    const entry = this.entries.get(key);
    if (entry && entry.catalog === catalog && entry.decision.policyVersion === snapshot.policyVersion) {
      this.stats.hits++;
      // LRU: re-insert as most recent.
      this.entries.delete(key);
      this.entries.set(key, entry);
      return entry.decision;
    }
    this.stats.misses++;
    const decision = compileDecision(snapshot, catalog, this.options);
    this.stats.buildMicrosLast = decision.buildMicros;
    this.stats.buildMicrosTotal += decision.buildMicros;
    this.entries.delete(key);
    this.entries.set(key, { decision, catalog });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    this.stats.size = this.entries.size;
    return decision;
  }

  /** Drop every decision of an org (revocation); the version note stays. */
  invalidateOrg(orgId: string): void {
    for (const key of [...this.entries.keys()]) if (key.startsWith(`${orgId}\u0000`)) this.entries.delete(key);
    this.stats.size = this.entries.size;
  }

  /** Drop one user's decisions (session revoked, user deactivated). */
  invalidateUser(orgId: string, userId: string): void {
    const prefix = `${orgId}\u0000${userId}\u0000`;
    for (const key of [...this.entries.keys()]) if (key.startsWith(prefix)) this.entries.delete(key);
    this.stats.size = this.entries.size;
  }
}
