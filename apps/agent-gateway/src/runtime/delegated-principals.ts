import { GetPrincipalSnapshot, type PrincipalSnapshot, type RequestOf } from '@custodian/contracts';
import { PrincipalSnapshotCache, type Bus } from '@custodian/platform';

type Delegation = NonNullable<RequestOf<typeof GetPrincipalSnapshot>['delegation']>;

export interface DelegationRequest {
  orgId: string;
  userId: string;
  sessionId: string | null;
  apiKeyId: string | null;
  delegation: Delegation;
}

/**
 * The user's principal delegated to an agent profile, as identity builds it for a token-exchanged
 * agent token, reused between turns under the same rules as the HTTP edge's principal cache
 * (PrincipalResolver, docs/access-rules.md R10; both keep it in a PrincipalSnapshotCache): at most `ttlMs` (CUSTODIAN_PRINCIPAL_CACHE_MS),
 * never past the credential's own expiry, dropped at once by identity's revocation broadcast (the
 * session, API key or user) and by a policy-version broadcast of the org; a snapshot older than an
 * announced version is never used; a bus gap empties the cache, and while the bus is not ready
 * nothing is served from it; a fill that raced an invalidation is used once and not kept.
 */
export class DelegatedPrincipals {
  private readonly cache: PrincipalSnapshotCache;
  private ready = false;

  constructor(
    private readonly bus: Bus,
    private readonly ttlMs: number,
    maxEntries = 10_000,
  ) {
    this.cache = new PrincipalSnapshotCache(maxEntries);
  }

  async start(): Promise<void> {
    if (this.ttlMs <= 0 || this.ready) return;
    await this.cache.listen(this.bus);
    this.ready = true;
  }

  async get(req: DelegationRequest): Promise<PrincipalSnapshot> {
    const caching = this.ready && this.bus.isReady();
    const key = JSON.stringify([
      req.orgId,
      req.userId,
      req.sessionId,
      req.apiKeyId,
      req.delegation.clientId,
      req.delegation.name,
      req.delegation.scopes,
    ]);
    if (caching) {
      const hit = this.cache.get(key);
      if (hit) return hit;
    }
    const epoch = this.cache.fillEpoch();
    const snapshot = await this.bus.request(GetPrincipalSnapshot, {
      userId: req.userId,
      orgId: req.orgId,
      ...(req.sessionId ? { sessionId: req.sessionId } : {}),
      ...(req.apiKeyId ? { apiKeyId: req.apiKeyId } : {}),
      delegation: req.delegation,
    });
    if (caching && this.bus.isReady()) this.cache.put(key, snapshot, epoch, this.ttlMs);
    return snapshot;
  }

  /** Entries held (for tests). */
  size(): number {
    return this.cache.size;
  }
}
