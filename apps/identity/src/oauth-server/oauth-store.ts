import { AsyncLocalStorage } from 'node:async_hooks';
import type { DataSource } from 'typeorm';
import type { KeyVault } from '../keys/key-vault';

/** Which OAuth endpoint the current request is for (the Koa callback runs inside it). */
export const oauthRequest = new AsyncLocalStorage<{ endpoint: string }>();

/** What the store asks of the consent bookkeeping (OAuthConsentsService). */
export interface OAuthStoreHooks {
  /** The grant is only usable while its consent, session and user are (R10: revocation ends it). */
  grantIsLive(grantId: string): Promise<boolean>;
  /** oidc-provider ended the grant (token revocation, refresh-token reuse): end what it is bound to. */
  grantEnded(grantId: string): Promise<void>;
  /** A client was registered (RFC 7591). */
  clientRegistered(clientId: string, payload: Record<string, unknown>): Promise<void>;
}

interface Row {
  payload: Record<string, unknown>;
  consumed: boolean;
}

const MAX_TTL_SECONDS = 400 * 24 * 3600;
/**
 * Registration is anonymous (RFC 7591, as MCP clients need it), so a registered client that no
 * user ever consented to is dropped after a day; a consent keeps it as long as the consent lives.
 */
export const UNCONSENTED_CLIENT_TTL_SECONDS = 24 * 3600;

/** The stored key of an artifact: a keyed hash of model and id. */
export function artifactKey(hash: (value: string) => string, model: string, id: string): string {
  return hash(`oauth:${model}:${id}`);
}

/**
 * oidc-provider's adapter on PostgreSQL (identity.oauth_model), one instance per model name. Ids
 * are stored as keyed hashes: for authorization codes and refresh tokens the id is the bearer value
 * itself, and a copy of the table must not be a set of usable tokens. A client's secret is sealed
 * with the master key. Expired rows are never returned and are swept now and then.
 */
export class OAuthStore {
  private static lastSweep = 0;

  constructor(
    private readonly model: string,
    private readonly ds: DataSource,
    private readonly hash: (value: string) => string,
    private readonly vault: KeyVault,
    private readonly hooks: OAuthStoreHooks,
  ) {}

  async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void> {
    const stored: Record<string, unknown> = { ...payload };
    // A browser session is looked up by its uid and must name its id; it proves nothing on its own
    // here (every consent asks for the password again). Every other id stays out of the table.
    if (this.model !== 'Session') delete stored.jti;
    if (this.model === 'Client' && typeof stored.client_secret === 'string') {
      stored.client_secret = { sealed: this.vault.seal(Buffer.from(stored.client_secret), `oauth-client:${id}`) };
    }
    const ttl =
      typeof expiresIn === 'number' && expiresIn > 0
        ? Math.min(expiresIn, MAX_TTL_SECONDS)
        : this.model === 'Client'
          ? UNCONSENTED_CLIENT_TTL_SECONDS
          : null;
    const grantId = typeof payload.grantId === 'string' ? payload.grantId : null;
    const uid = typeof payload.uid === 'string' ? this.hash(`oauth-uid:${payload.uid}`) : null;
    const inserted: Array<{ inserted: boolean }> = await this.ds.query(
      `INSERT INTO oauth_model (model, id_hash, payload, grant_id, uid_hash, expires_at)
       VALUES ($1, $2, $3, $4, $5, CASE WHEN $6::int IS NULL THEN NULL ELSE now() + make_interval(secs => $6::int) END)
       ON CONFLICT (model, id_hash) DO UPDATE
         SET payload = EXCLUDED.payload, grant_id = EXCLUDED.grant_id, uid_hash = EXCLUDED.uid_hash, expires_at = EXCLUDED.expires_at
       RETURNING (xmax = 0) AS inserted`,
      [this.model, this.key(id), JSON.stringify(stored), grantId, uid, ttl],
    );
    if (this.model === 'Client' && inserted[0]?.inserted) await this.hooks.clientRegistered(id, stored);
    await this.sweepNowAndThen();
  }

  async find(id: string): Promise<Record<string, unknown> | undefined> {
    const row = await this.one('id_hash = $2', this.key(id));
    if (!row) return undefined;
    if (this.model === 'Grant' && !(await this.hooks.grantIsLive(id))) return undefined;
    return this.restore(id, row);
  }

  async findByUid(uid: string): Promise<Record<string, unknown> | undefined> {
    const row = await this.one('uid_hash = $2', this.hash(`oauth-uid:${uid}`));
    return row ? { ...row.payload } : undefined;
  }

  findByUserCode(): Promise<undefined> {
    // The device flow is not enabled.
    return Promise.resolve(undefined);
  }

  async consume(id: string): Promise<void> {
    await this.ds.query('UPDATE oauth_model SET consumed_at = now() WHERE model = $1 AND id_hash = $2 AND consumed_at IS NULL', [
      this.model,
      this.key(id),
    ]);
  }

  async destroy(id: string): Promise<void> {
    await this.ds.query('DELETE FROM oauth_model WHERE model = $1 AND id_hash = $2', [this.model, this.key(id)]);
    if (this.model === 'Grant') await this.hooks.grantEnded(id);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.ds.query('DELETE FROM oauth_model WHERE model = $1 AND grant_id = $2', [this.model, grantId]);
  }

  private key(id: string): string {
    return artifactKey(this.hash, this.model, id);
  }

  private async one(where: string, value: string): Promise<Row | undefined> {
    const rows: Array<{ payload: Record<string, unknown>; consumed: boolean }> = await this.ds.query(
      `SELECT payload, consumed_at IS NOT NULL AS consumed FROM oauth_model
        WHERE model = $1 AND ${where} AND (expires_at IS NULL OR expires_at > now()) LIMIT 1`,
      [this.model, value],
    );
    return rows[0];
  }

  private restore(id: string, row: Row): Record<string, unknown> {
    const payload: Record<string, unknown> = { ...row.payload };
    if (this.model !== 'Client') payload.jti = id;
    if (row.consumed) payload.consumed = true;
    const secret = payload.client_secret as { sealed?: unknown } | undefined;
    if (this.model === 'Client' && secret && typeof secret.sealed === 'string') {
      payload.client_secret = this.vault.open(secret.sealed, `oauth-client:${id}`).toString('utf8');
    }
    return payload;
  }

  /** At most once a minute per process: drop what expired a day ago (bounded per sweep). */
  private async sweepNowAndThen(): Promise<void> {
    if (Date.now() - OAuthStore.lastSweep < 60_000) return;
    OAuthStore.lastSweep = Date.now();
    await this.ds.query(
      `DELETE FROM oauth_model WHERE ctid IN (
         SELECT ctid FROM oauth_model WHERE expires_at < now() - interval '1 day' LIMIT 1000)`,
    );
  }
}
