import { CredentialRevoked, PolicyVersionChanged, type CredentialRevokedEvent, type PrincipalSnapshot } from '@custodian/contracts';
import type { Bus } from '../bus/bus';

interface CachedPrincipal {
  readonly snapshot: PrincipalSnapshot;
  /** Epoch ms after which the entry is not used: TTL, token `exp`, session/key expiry. */
  readonly usableUntil: number;
}

/**
 * Principal snapshots kept under identity's invalidation broadcasts (R10; the events and
 * what each drops: docs/identity.md, "Freshness (R10)"); the one implementation behind the HTTP
 * edge's PrincipalResolver and the agent runtime's DelegatedPrincipals:
 * - `evt.identity.revoked` drops every entry of the revoked sessions / API keys / users;
 * - `evt.identity.policy-version` drops the org's entries older than the announced version and
 *   remembers it: a snapshot older than an announced version is never used nor kept;
 * - a bus gap (broadcasts may have been missed) empties the cache;
 * - every invalidation starts a new epoch: a fill that began in an older one is not kept (a revoke
 *   that races a fill cannot be outlived by the filled entry);
 * - at most `maxEntries`, the oldest forgotten first.
 * Whether to use the cache at all (listening, bus ready, TTL > 0) is the caller's decision.
 */
export class PrincipalSnapshotCache {
  private readonly entries = new Map<string, CachedPrincipal>();
  /** Highest policy version announced per org. */
  private readonly announced = new Map<string, number>();
  /** Bumped by every invalidation. */
  private epoch = 0;

  constructor(private readonly maxEntries = 10_000) {}

  /** Installs the invalidation listeners on the bus. */
  async listen(bus: Bus): Promise<void> {
    const onGap = (): void => this.invalidate(() => this.entries.clear());
    await bus.listen(CredentialRevoked, (event) => this.revoked(event), { onGap });
    await bus.listen(PolicyVersionChanged, (event) => this.policyChanged(event.orgId, event.policyVersion), { onGap });
  }

  /** The snapshot under `key` while usable and not older than `minPolicyVersion` or an announced version; a stale one is dropped. */
  get(key: string, minPolicyVersion = 0): PrincipalSnapshot | undefined {
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    if (Date.now() < hit.usableUntil && hit.snapshot.policyVersion >= Math.max(minPolicyVersion, this.announcedFor(hit.snapshot.orgId)))
      return hit.snapshot;
    this.entries.delete(key);
    return undefined;
  }

  /** Taken before fetching a snapshot, handed to put(). */
  fillEpoch(): number {
    return this.epoch;
  }

  /**
   * Keeps a fetched snapshot for at most `ttlMs`, never past `expiresAt` (epoch ms) or the
   * credential's own expiry — unless an invalidation arrived since `epoch` or the snapshot is
   * older than an announced policy version.
   */
  put(key: string, snapshot: PrincipalSnapshot, epoch: number, ttlMs: number, expiresAt = Infinity): void {
    if (epoch !== this.epoch || snapshot.policyVersion < this.announcedFor(snapshot.orgId)) return;
    const now = Date.now();
    const credentialExpiry = snapshot.credentialExpiresAt ? Date.parse(snapshot.credentialExpiresAt) : Infinity;
    const usableUntil = Math.min(now + ttlMs, expiresAt, credentialExpiry);
    if (usableUntil <= now) return;
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(key, { snapshot, usableUntil });
  }

  get size(): number {
    return this.entries.size;
  }

  private announcedFor(orgId: string): number {
    return this.announced.get(orgId) ?? 0;
  }

  private revoked(event: CredentialRevokedEvent): void {
    const ids = new Set(event.ids);
    const field = event.kind === 'session' ? 'sessionId' : event.kind === 'api_key' ? 'apiKeyId' : 'userId';
    this.invalidate(() => {
      for (const [key, entry] of this.entries) {
        const value = entry.snapshot[field];
        if (value !== undefined && ids.has(value)) this.entries.delete(key);
      }
    });
  }

  private policyChanged(orgId: string, version: number): void {
    if (version > this.announcedFor(orgId)) this.announced.set(orgId, version);
    this.invalidate(() => {
      for (const [key, entry] of this.entries) {
        if (entry.snapshot.orgId === orgId && entry.snapshot.policyVersion < version) this.entries.delete(key);
      }
    });
  }

  private invalidate(drop: () => void): void {
    this.epoch++;
    drop();
  }
}
