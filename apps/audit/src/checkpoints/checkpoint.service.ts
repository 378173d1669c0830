import { generateKeyPairSync, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { ErrorCode } from '@custodian/contracts';
import {
  CONFIG,
  CustodianException,
  LOGGER,
  SERVICE_DATA_SOURCE,
  MasterKeyMismatchError,
  masterKeySource,
  uuidv7,
  type CustodianConfig,
} from '@custodian/platform';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import { checkCheckpoint, keyIdOf, signStatement, type CheckpointStatement, type SignedCheckpoint } from './checkpoint-statement';
import { SealedBox } from './sealed-box';

interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicPem: string;
}

/** How often the service looks for chains that grew by CUSTODIAN_AUDIT_CHECKPOINT_EVERY_EVENTS. */
const COUNT_POLL_MS = 1000;

/**
 * Signs checkpoints of every chain head (Ed25519) — every CUSTODIAN_AUDIT_CHECKPOINT_INTERVAL_MS,
 * as soon as a chain grew by CUSTODIAN_AUDIT_CHECKPOINT_EVERY_EVENTS since its last checkpoint
 * (looked for every second), after every verification that passed (the verified head), and on
 * demand. Rows after the newest checkpoint are what a superuser could still rewrite unnoticed
 * (docs/audit.md, "What a checkpoint protects"), so the window is kept short on both time and count. The private key lives in
 * audit_signing_key sealed with AES-256-GCM under the master key; a key row is trusted only if
 * its sealed private key opens under the master key and matches its public key, so a row
 * inserted by someone without the master key cannot vouch for a forged checkpoint.
 */
@Injectable()
export class CheckpointService implements OnApplicationBootstrap, OnApplicationShutdown {
  private key: SigningKey | undefined;
  private trusted: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private countTimer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private countPass: Promise<unknown> | undefined;

  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(CONFIG) private readonly config: CustodianConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const master = this.config.secrets.masterKey;
    if (!master) {
      // Deployments that predate checkpoints give the master key to identity only: keep storing and
      // verifying the chain, but say loudly that nothing is being signed.
      this.logger.error('CUSTODIAN_MASTER_KEY (or _FILE) is not set for the audit service: signed checkpoints are DISABLED');
      return;
    }
    await this.loadOrCreateKey(new SealedBox(master));
    const every = this.config.audit?.checkpointIntervalMs ?? 60_000;
    if (every > 0) {
      this.timer = setInterval(
        () => void this.checkpointAll().catch((err: unknown) => this.logger.warn({ err }, 'checkpoint failed')),
        every,
      );
      this.timer.unref();
    }
    const count = this.config.audit?.checkpointEveryEvents ?? 1000;
    if (count > 0) {
      this.countTimer = setInterval(() => {
        // One pass at a time: a slow database must not pile up passes.
        if (this.countPass) return;
        this.countPass = this.track(this.signMoved(count))
          .catch((err: unknown) => this.logger.warn({ err }, 'checkpoint (event count) failed'))
          .finally(() => (this.countPass = undefined));
      }, COUNT_POLL_MS);
      this.countTimer.unref();
    }
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.countTimer) clearInterval(this.countTimer);
    await Promise.all([this.running?.catch(() => undefined), this.countPass]);
  }

  /** PEM public keys whose checkpoints this service trusts (export these to pin them offline). */
  trustedKeys(): string[] {
    return [...this.trusted];
  }

  /** Signs a checkpoint for every chain whose head moved since its last checkpoint; returns how many. */
  async checkpointAll(): Promise<number> {
    return this.track(this.signMoved(1));
  }

  /**
   * Signs exactly the head a verification just walked and found intact (never a head it did not
   * check), unless a checkpoint at or past it exists. A no-op without a signing key.
   */
  async signVerifiedHead(chainId: string, seq: number, headHash: string): Promise<boolean> {
    if (!this.key || seq < 1) return false;
    return this.track(this.sign(this.key, chainId, seq, headHash));
  }

  private track<T>(run: Promise<T>): Promise<T> {
    this.running = run;
    return run;
  }

  async latest(chainId: string): Promise<SignedCheckpoint | undefined> {
    return (await this.list(chainId, 1))[0];
  }

  /** Newest first. */
  async list(chainId: string, limit: number): Promise<SignedCheckpoint[]> {
    const rows = (await this.ds.query(
      `SELECT c.chain_id::text, c.seq::text AS seq, c.head_hash, c.signed_at, c.key_id, c.signature, k.public_key
         FROM audit_checkpoint c LEFT JOIN audit_signing_key k ON k.kid = c.key_id
        WHERE c.chain_id = $1 ORDER BY c.seq DESC, c.signed_at DESC LIMIT $2`,
      [chainId, limit],
    )) as Array<{
      chain_id: string;
      seq: string;
      head_hash: string;
      signed_at: Date;
      key_id: string;
      signature: string;
      public_key: string | null;
    }>;
    return rows.map((r) => ({
      v: 1,
      type: 'custodian.audit.checkpoint',
      chainId: r.chain_id,
      seq: Number(r.seq),
      headHash: r.head_hash,
      // Signed with millisecond ISO time, which a timestamptz keeps exactly.
      signedAt: new Date(r.signed_at).toISOString(),
      kid: r.key_id,
      signature: r.signature,
      publicKey: r.public_key ?? '',
    }));
  }

  check(doc: unknown): ReturnType<typeof checkCheckpoint> {
    return checkCheckpoint(doc, this.trusted);
  }

  /** False when the service runs without a master key (no signing key can be sealed). */
  get enabled(): boolean {
    return this.key !== undefined;
  }

  /** Signs the head of every chain that grew by at least `minAdvance` rows since its newest checkpoint. */
  private async signMoved(minAdvance: number): Promise<number> {
    const key = this.key;
    if (!key) throw new CustodianException(ErrorCode.ServiceUnavailable, 'Checkpoint signing is not configured (no master key)');
    const moved = (await this.ds.query(
      `SELECT h.chain_id::text, h.seq::text AS seq, h.head_hash FROM audit_chain_head h
        WHERE h.seq > 0 AND h.seq >= COALESCE((SELECT max(c.seq) FROM audit_checkpoint c WHERE c.chain_id = h.chain_id), 0) + $1`,
      [minAdvance],
    )) as Array<{ chain_id: string; seq: string; head_hash: string }>;
    let signed = 0;
    for (const head of moved) if (await this.sign(key, head.chain_id, Number(head.seq), head.head_hash)) signed++;
    return signed;
  }

  /** One checkpoint row, unless one at or past `seq` exists (the timers and verify may race for the same head). */
  private async sign(key: SigningKey, chainId: string, seq: number, headHash: string): Promise<boolean> {
    const statement: CheckpointStatement = {
      v: 1,
      type: 'custodian.audit.checkpoint',
      chainId,
      seq,
      headHash,
      signedAt: new Date().toISOString(),
      kid: key.kid,
    };
    const inserted = (await this.ds.query(
      `INSERT INTO audit_checkpoint (id, chain_id, seq, head_hash, signed_at, key_id, signature)
       SELECT $1, $2, $3, $4, $5, $6, $7
        WHERE NOT EXISTS (SELECT 1 FROM audit_checkpoint c WHERE c.chain_id = $2 AND c.seq >= $3)
       RETURNING id`,
      [uuidv7(), chainId, seq, headHash, statement.signedAt, key.kid, signStatement(statement, key.privateKey)],
    )) as unknown[];
    return inserted.length > 0;
  }

  private async loadOrCreateKey(box: SealedBox): Promise<void> {
    const load = async (): Promise<void> => {
      const rows = (await this.ds.query(
        `SELECT kid, public_key, private_key_sealed FROM audit_signing_key ORDER BY created_at, kid`,
      )) as Array<{
        kid: string;
        public_key: string;
        private_key_sealed: string;
      }>;
      this.trusted = [];
      for (const row of rows) {
        try {
          const privateKey = createPrivateKey({
            key: box.open(row.private_key_sealed, `audit-signing-key:${row.kid}`),
            format: 'der',
            type: 'pkcs8',
          });
          const publicPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
          if (keyIdOf(createPublicKey(privateKey)) !== row.kid || publicPem.trim() !== row.public_key.trim()) continue;
          this.trusted.push(publicPem);
          this.key = { kid: row.kid, privateKey, publicPem };
        } catch {
          this.logger.warn({ kid: row.kid }, 'audit signing key does not open under the master key; not trusted');
        }
      }
    };
    await load();
    if (this.key) return;
    // Keys exist but none opens: the master key is wrong or was replaced. A new key sealed under it
    // would make every later checkpoint look forged, so the start is refused instead.
    const [{ n }] = (await this.ds.query(`SELECT count(*)::int AS n FROM audit_signing_key`)) as Array<{ n: number }>;
    if (n > 0) throw new MasterKeyMismatchError('audit checkpoint signing key', masterKeySource(this.config));
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const kid = keyIdOf(publicKey);
    const sealed = box.seal(privateKey.export({ type: 'pkcs8', format: 'der' }), `audit-signing-key:${kid}`);
    await this.ds.query(
      `INSERT INTO audit_signing_key (kid, public_key, private_key_sealed) VALUES ($1, $2, $3) ON CONFLICT (kid) DO NOTHING`,
      [kid, publicKey.export({ type: 'spki', format: 'pem' }).toString(), sealed],
    );
    await load();
    if (!this.key) throw new Error('could not create the audit signing key');
  }
}
