import { hash } from 'node:crypto';
import { AuthenticateApiKey, ErrorCode, GetJwks, GetPrincipalSnapshot, type PrincipalSnapshot } from '@custodian/contracts';
import type { Logger } from 'pino';
import type { Bus } from '../bus/bus';
import { CustodianException } from '../errors/custodian.exception';
import { PrincipalSnapshotCache } from './principal-snapshot-cache';
import { TokenVerifier, type AccessTokenClaims, type TokenVerifierOptions } from './token-verifier';

/** API keys are recognisable by this prefix: `cak_<public id>_<secret>` (docs/identity.md). */
export const API_KEY_PREFIX = 'cak_';
/**
 * What can be an API key at all: the prefix, then the characters keys are made of, within the
 * length identity's request contract accepts. Anything else is refused here with the answer a
 * wrong key gets — sent on, the bus would refuse the oversized request as a contract violation.
 */
const API_KEY_SHAPE = /^cak_[A-Za-z0-9_-]{1,252}$/;
const DELEGATION_CLIENT = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

export interface PrincipalCacheOptions {
  /** How long a resolved snapshot is reused for the same credential; 0 disables the cache. */
  ttlMs: number;
  /** Most credentials remembered at once (oldest forgotten first). */
  maxEntries?: number;
}

/**
 * Turns a bearer credential into a principal snapshot. Access tokens are verified locally, then
 * identity is asked (over the bus) for the snapshot, which also proves the session or key is still
 * live. API keys are checked by identity, the only holder of their keyed hashes.
 *
 * The answer is cached per credential (a hash of the presented bearer string) for at most `ttlMs`,
 * never past the token's `exp` or the credential's own expiry, and dropped the moment identity's
 * revocation or policy-version broadcast arrives (R10, docs/identity.md "Freshness (R10)"; the rules
 * live in PrincipalSnapshotCache, shared with the agent runtime):
 * - `evt.identity.revoked` drops every entry of the revoked sessions / API keys / users;
 * - `evt.identity.policy-version` drops the org's entries older than the announced version, and
 *   remembers the version: a snapshot older than a version this process has been told about is
 *   never used (nor cached);
 * - a request may carry `Custodian-Policy-Version: n` (the version a change returned); a cached
 *   snapshot older than n is not used;
 * - a bus gap (disconnect/reconnect: broadcasts may have been missed) empties the cache, and while
 *   the bus is not ready nothing is served from it;
 * - a snapshot fetched while an invalidation arrived is used for its own request but not cached,
 *   so a revoke that races a cache fill cannot be outlived by the filled entry.
 */
export class PrincipalResolver {
  private readonly verifier: TokenVerifier;
  private readonly cache: PrincipalSnapshotCache;
  private listening: Promise<void> | undefined;
  /** True once the invalidation listeners are in place. */
  private ready = false;
  private readonly ttlMs: number;
  private hits = 0;
  private misses = 0;

  constructor(
    private readonly bus: Bus,
    opts: TokenVerifierOptions,
    private readonly logger: Logger,
    cache: PrincipalCacheOptions = { ttlMs: 0 },
  ) {
    this.verifier = new TokenVerifier(opts, () => bus.request(GetJwks, {}), logger);
    this.ttlMs = Math.max(0, cache.ttlMs);
    this.cache = new PrincipalSnapshotCache(Math.max(1, cache.maxEntries ?? 10_000));
  }

  /**
   * Starts listening for invalidations; until it has, nothing is cached. Called once at boot
   * (CoreModule); idempotent.
   */
  start(): Promise<void> {
    if (this.ttlMs === 0) return Promise.resolve();
    this.listening ??= (async () => {
      await this.cache.listen(this.bus);
      this.ready = true;
    })();
    return this.listening;
  }

  /** Cache counters (for the metrics endpoint and tests). */
  stats(): { entries: number; hits: number; misses: number } {
    return { entries: this.cache.size, hits: this.hits, misses: this.misses };
  }

  /**
   * The principal of a bearer credential. `minPolicyVersion`: the caller knows this version exists
   * (the `Custodian-Policy-Version` header); an older cached snapshot is not used.
   */
  async resolveBearer(token: string, minPolicyVersion = 0): Promise<PrincipalSnapshot> {
    const caching = this.ready && this.ttlMs > 0 && this.bus.isReady();
    // One-shot hash: no Hash object per request.
    const key = caching ? hash('sha256', token, 'base64url') : '';
    if (caching) {
      const hit = this.cache.get(key, minPolicyVersion);
      if (hit) {
        this.hits++;
        return hit;
      }
      this.misses++;
    }
    const epoch = this.cache.fillEpoch();
    const { snapshot, tokenExpiresAt } = await this.fetch(token);
    if (caching && this.bus.isReady()) this.cache.put(key, snapshot, epoch, this.ttlMs, tokenExpiresAt);
    return snapshot;
  }

  private async fetch(token: string): Promise<{ snapshot: PrincipalSnapshot; tokenExpiresAt?: number }> {
    if (token.startsWith(API_KEY_PREFIX)) {
      if (!API_KEY_SHAPE.test(token)) throw CustodianException.unauthenticated('Invalid API key');
      return { snapshot: await this.ask(() => this.bus.request(AuthenticateApiKey, { key: token }), 'Invalid API key') };
    }
    const claims = await this.verifier.verify(token);
    const delegation = delegationOf(claims);
    if (delegation === 'invalid') throw CustodianException.unauthenticated('Invalid or expired access token');
    const snapshot = await this.ask(
      () =>
        this.bus.request(GetPrincipalSnapshot, {
          userId: claims.sub,
          orgId: claims.org,
          ...(claims.sid ? { sessionId: claims.sid } : {}),
          ...(claims.akid ? { apiKeyId: claims.akid } : {}),
          ...(delegation ? { delegation } : {}),
        }),
      'Invalid or expired access token',
    );
    return { snapshot, tokenExpiresAt: typeof claims.exp === 'number' ? claims.exp * 1000 : undefined };
  }

  private async ask(call: () => Promise<PrincipalSnapshot>, refused: string): Promise<PrincipalSnapshot> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof CustodianException && (error.code === ErrorCode.NotFound || error.code === ErrorCode.Unauthenticated)) {
        throw CustodianException.unauthenticated(refused);
      }
      // The caller is not authenticated yet: a request or reply that broke its contract while
      // checking their credential proves nothing about them, so they get the same 401 as any
      // refused credential, never a 502 that would tell malformed credentials apart.
      if (error instanceof CustodianException && error.code === ErrorCode.InvalidMessage) {
        this.logger.warn({ code: error.code, message: error.message }, 'credential check failed its bus contract');
        throw CustodianException.unauthenticated(refused);
      }
      throw error;
    }
  }
}

/** The RFC 8693 delegation of an agent token (`act.sub`, `scope`, `agent_name`), if any. */
function delegationOf(claims: AccessTokenClaims): { clientId: string; name: string; scopes: string[] } | undefined | 'invalid' {
  const act = (claims as { act?: unknown }).act;
  if (act === undefined) return undefined;
  const clientId = typeof act === 'object' && act !== null ? (act as { sub?: unknown }).sub : undefined;
  const scope = (claims as { scope?: unknown }).scope;
  const name = (claims as { agent_name?: unknown }).agent_name;
  if (typeof clientId !== 'string' || !DELEGATION_CLIENT.test(clientId) || typeof scope !== 'string' || scope.length > 512)
    return 'invalid';
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) return 'invalid';
  const scopes = scope.split(' ').filter(Boolean);
  if (scopes.length > 8) return 'invalid';
  return { clientId, name, scopes };
}
