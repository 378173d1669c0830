import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign as signBytes, type KeyObject } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, type Jwks } from '@custodian/contracts';
import { CustodianException, OutboxWriter, SERVICE_DATA_SOURCE } from '@custodian/platform';
import { SignJWT, type JWTPayload } from 'jose';
import { IsNull, type DataSource, type EntityManager } from 'typeorm';
import { SigningKeyEntity } from '../entities/signing-key.entity';
import { IdentityEvents } from '../events/identity-events.service';
import { KeyVault } from './key-vault';

export const KEY_VAULT = Symbol('KEY_VAULT');
const ALG = 'EdDSA';
/** RFC 9068 access-token type; verifiers refuse any other typ (ID or refresh tokens). */
export const ACCESS_TOKEN_TYPE_HEADER = 'at+jwt';
/** Replicas re-read which key is active this often, so a rotation reaches every signer. */
const ACTIVE_KEY_TTL_MS = 10_000;

export interface SigningKeyView {
  kid: string;
  alg: string;
  active: boolean;
  /** True for the key that signs new tokens right now. */
  signing: boolean;
  activatesAt: string | null;
  createdAt: string;
  retiredAt: string | null;
}

/**
 * Ed25519 signing keys: created encrypted at rest, published through the JWKS, used to sign tokens.
 * Rotation overlaps: the new key signs at once, the previous one stays in the JWKS (verifies) until
 * it is retired; verifiers pick the new kid up with one JWKS refetch.
 */
@Injectable()
export class SigningKeyService {
  private active: { kid: string; key: KeyObject; loadedAt: number } | undefined;

  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(KEY_VAULT) private readonly vault: KeyVault,
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
  ) {}

  /** Makes sure one active key exists (once, even with several replicas starting together). */
  async ensureActiveKey(): Promise<void> {
    await this.ds.transaction(async (m) => {
      await m.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['custodian:signing-key']);
      const existing = await m.findOne(SigningKeyEntity, { where: { active: true }, order: { createdAt: 'DESC' } });
      if (existing) return;
      await this.createKey(m);
    });
  }

  /**
   * A new key, in the JWKS at once, signing after `activateAfterSeconds` (default 60: longer than a
   * verifier's refetch cooldown). Older keys keep verifying until retired. Audited installation-wide
   * (`identity.signing_key.rotated`, no org) in the same transaction.
   */
  rotate(activateAfterSeconds = 60): Promise<SigningKeyView> {
    return this.events.transaction(async (m) => {
      await m.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['custodian:signing-key']);
      const kid = await this.createKey(m, activateAfterSeconds);
      this.active = undefined;
      const key = (await this.list(m)).find((k) => k.kid === kid)!;
      await this.outbox.append(m, {
        orgId: null,
        action: 'identity.signing_key.rotated',
        outcome: 'success',
        target: { type: 'signing_key', id: key.kid },
        details: { activatesAt: key.activatesAt },
      });
      return key;
    });
  }

  /**
   * Removes a key that no longer signs from the JWKS: tokens it signed stop verifying. Audited
   * installation-wide (`identity.signing_key.retired`) in the same transaction.
   */
  retire(kid: string): Promise<SigningKeyView> {
    return this.events.transaction(async (m) => {
      await m.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['custodian:signing-key']);
      const row = await m.findOne(SigningKeyEntity, { where: { kid } });
      if (!row) throw CustodianException.notFound('Signing key not found');
      const signing = await this.signingRow(m);
      if (signing?.kid === kid || (row.activatesAt && row.activatesAt.getTime() > Date.now())) {
        throw new CustodianException(ErrorCode.Conflict, 'The signing key (or one about to sign) cannot be retired; rotate first');
      }
      if (!row.retiredAt) await m.update(SigningKeyEntity, { kid }, { retiredAt: () => 'now()', active: false });
      const key = (await this.list(m)).find((k) => k.kid === kid)!;
      await this.outbox.append(m, {
        orgId: null,
        action: 'identity.signing_key.retired',
        outcome: 'success',
        target: { type: 'signing_key', id: kid },
      });
      return key;
    });
  }

  async list(m: EntityManager = this.ds.manager): Promise<SigningKeyView[]> {
    const signing = await this.signingRow(m);
    return (await m.find(SigningKeyEntity, { order: { createdAt: 'DESC' }, take: 50 })).map((k) => view(k, k.kid === signing?.kid));
  }

  async jwks(): Promise<Jwks> {
    const keys = await this.ds
      .getRepository(SigningKeyEntity)
      .find({ where: { retiredAt: IsNull() }, order: { createdAt: 'DESC' }, take: 8 });
    return {
      keys: keys.map((k) => ({
        kty: k.publicJwk.kty,
        crv: k.publicJwk.crv,
        x: k.publicJwk.x,
        kid: k.kid,
        alg: k.alg,
        use: 'sig' as const,
      })),
    };
  }

  async sign(claims: JWTPayload, opts: { issuer: string; audience: string; ttlSeconds: number; typ: string }): Promise<string> {
    const { kid, key } = await this.activeKey();
    return new SignJWT(claims)
      .setProtectedHeader({ alg: ALG, kid, typ: opts.typ })
      .setIssuer(opts.issuer)
      .setAudience(opts.audience)
      .setIssuedAt()
      .setExpirationTime(`${opts.ttlSeconds}s`)
      .sign(key);
  }

  /** The kid that signs now and its public key: the OAuth server's external signing key (apps/identity/src/oauth-server). */
  async signingKey(): Promise<{ kid: string; publicKey: KeyObject }> {
    const { kid, key } = await this.activeKey();
    return { kid, publicKey: createPublicKey(key) };
  }

  /** Signs JWS input (EdDSA) with an unretired key of this service; the private key never leaves it. */
  async signJwsInput(kid: string, data: Uint8Array): Promise<Buffer> {
    const active = await this.activeKey();
    let key = active.kid === kid ? active.key : undefined;
    if (!key) {
      const row = await this.ds.getRepository(SigningKeyEntity).findOne({ where: { kid, retiredAt: IsNull() } });
      if (!row) throw new Error('signing key is not available');
      key = createPrivateKey(this.vault.open(row.privateKeyEnc, `signing-key:${kid}`).toString('utf8'));
    }
    return signBytes(null, data, key);
  }

  /** The newest active, unretired key whose activation time has come. */
  private signingRow(m: EntityManager): Promise<SigningKeyEntity | null> {
    return m
      .createQueryBuilder(SigningKeyEntity, 'k')
      .where('k.active AND k.retired_at IS NULL AND (k.activates_at IS NULL OR k.activates_at <= now())')
      .orderBy('k.created_at', 'DESC')
      .getOne();
  }

  private async createKey(m: EntityManager, activateAfterSeconds = 0): Promise<string> {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const kid = randomBytes(12).toString('base64url');
    const publicJwk = publicKey.export({ format: 'jwk' }) as Record<string, string>;
    const privatePem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    await m.insert(SigningKeyEntity, {
      kid,
      alg: ALG,
      publicJwk: { kty: publicJwk.kty, crv: publicJwk.crv, x: publicJwk.x },
      privateKeyEnc: this.vault.seal(Buffer.from(privatePem), `signing-key:${kid}`),
      active: true,
      retiredAt: null,
      activatesAt: activateAfterSeconds > 0 ? new Date(Date.now() + activateAfterSeconds * 1000) : null,
    });
    return kid;
  }

  private async activeKey(): Promise<{ kid: string; key: KeyObject }> {
    if (this.active && Date.now() - this.active.loadedAt < ACTIVE_KEY_TTL_MS) return this.active;
    const row = await this.signingRow(this.ds.manager);
    if (!row) throw new Error('no active signing key');
    if (this.active?.kid !== row.kid) {
      const pem = this.vault.open(row.privateKeyEnc, `signing-key:${row.kid}`).toString('utf8');
      this.active = { kid: row.kid, key: createPrivateKey(pem), loadedAt: Date.now() };
    } else {
      this.active.loadedAt = Date.now();
    }
    return this.active;
  }
}

function view(k: SigningKeyEntity, signing: boolean): SigningKeyView {
  return {
    kid: k.kid,
    alg: k.alg,
    active: k.active,
    signing,
    activatesAt: k.activatesAt?.toISOString() ?? null,
    createdAt: k.createdAt.toISOString(),
    retiredAt: k.retiredAt?.toISOString() ?? null,
  };
}
