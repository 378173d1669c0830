import {
  CredentialRevoked,
  GetPrincipalSnapshot,
  PolicyVersionChanged,
  type CredentialRevokedEvent,
  type PrincipalSnapshot,
  type RequestOf,
} from '@custodian/contracts';
import type { Bus } from '@custodian/platform';

type Delegation = NonNullable<RequestOf<typeof GetPrincipalSnapshot>['delegation']>;

export interface DelegationRequest {
  orgId: string;
  userId: string;
  sessionId: string | null;
  apiKeyId: string | null;
  delegation: Delegation;
}

interface Entry {
  snapshot: PrincipalSnapshot;
  usableUntil: number;
}

/**
 * The user's principal delegated to an agent profile, as identity builds it for a token-exchanged
 * agent token, reused between turns under the same rules as the HTTP edge's principal cache
 * (PrincipalResolver, docs/access-rules.md R10): at most `ttlMs` (CUSTODIAN_PRINCIPAL_CACHE_MS),
 * never past the credential's own expiry, dropped at once by identity's revocation broadcast (the
 * session, API key or user) and by a policy-version broadcast of the org; a snapshot older than an
 * announced version is never used; a bus gap empties the cache, and while the bus is not ready
 * nothing is served from it; a fill that raced an invalidation is used once and not kept.
 */
export class DelegatedPrincipals {
  private readonly cache = new Map<string, Entry>();
  private readonly announced = new Map<string, number>();
  private epoch = 0;
  private ready = false;

  constructor(
    private readonly bus: Bus,
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  async start(): Promise<void> {
    if (this.ttlMs <= 0 || this.ready) return;
    const onGap = (): void => this.invalidate(() => this.cache.clear());
    await this.bus.listen(CredentialRevoked, (event) => this.revoked(event), { onGap });
    await this.bus.listen(PolicyVersionChanged, (event) => this.policyChanged(event.orgId, event.policyVersion), { onGap });
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
      if (hit && Date.now() < hit.usableUntil && hit.snapshot.policyVersion >= (this.announced.get(req.orgId) ?? 0)) return hit.snapshot;
      if (hit) this.cache.delete(key);
    }
    const epoch = this.epoch;
    const snapshot = await this.bus.request(GetPrincipalSnapshot, {
      userId: req.userId,
      orgId: req.orgId,
      ...(req.sessionId ? { sessionId: req.sessionId } : {}),
      ...(req.apiKeyId ? { apiKeyId: req.apiKeyId } : {}),
      delegation: req.delegation,
    });
    if (caching && epoch === this.epoch && this.bus.isReady() && snapshot.policyVersion >= (this.announced.get(req.orgId) ?? 0)) {
      const now = Date.now();
      const expiry = snapshot.credentialExpiresAt ? Date.parse(snapshot.credentialExpiresAt) : Infinity;
      const usableUntil = Math.min(now + this.ttlMs, expiry);
      if (usableUntil > now) {
        if (this.cache.size >= this.maxEntries) this.cache.delete(this.cache.keys().next().value as string);
        this.cache.set(key, { snapshot, usableUntil });
      }
    }
    return snapshot;
  }

  /** Entries held (for tests). */
  size(): number {
    return this.cache.size;
  }

  private revoked(event: CredentialRevokedEvent): void {
    const ids = new Set(event.ids);
    const field = event.kind === 'session' ? 'sessionId' : event.kind === 'api_key' ? 'apiKeyId' : 'userId';
    this.invalidate(() => {
      for (const [key, entry] of this.cache) {
        const value = entry.snapshot[field];
        if (value !== undefined && ids.has(value)) this.cache.delete(key);
      }
    });
  }

  private policyChanged(orgId: string, version: number): void {
    if (version > (this.announced.get(orgId) ?? 0)) this.announced.set(orgId, version);
    this.invalidate(() => {
      for (const [key, entry] of this.cache)
        if (entry.snapshot.orgId === orgId && entry.snapshot.policyVersion < version) this.cache.delete(key);
    });
  }

  private invalidate(drop: () => void): void {
    this.epoch++;
    drop();
  }
}
