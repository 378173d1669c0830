import { createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { Jwks } from '@custodian/contracts';
import { SERVICE_DATA_SOURCE } from '@custodian/platform';
import { SignJWT, type JWTPayload } from 'jose';
import { IsNull, type DataSource } from 'typeorm';
import { SigningKeyEntity } from '../entities/signing-key.entity';
import { KeyVault } from './key-vault';

export const KEY_VAULT = Symbol('KEY_VAULT');
const ALG = 'EdDSA';
/** RFC 9068 access-token type; verifiers refuse any other typ (ID or refresh tokens). */
export const ACCESS_TOKEN_TYPE_HEADER = 'at+jwt';

/** Ed25519 signing keys: created encrypted at rest, published through the JWKS, used to sign tokens. */
@Injectable()
export class SigningKeyService {
  private active: { kid: string; key: KeyObject } | undefined;

  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(KEY_VAULT) private readonly vault: KeyVault,
  ) {}

  /** Makes sure one active key exists (once, even with several replicas starting together). */
  async ensureActiveKey(): Promise<void> {
    await this.ds.transaction(async (m) => {
      await m.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['custodian:signing-key']);
      const existing = await m.findOne(SigningKeyEntity, { where: { active: true }, order: { createdAt: 'DESC' } });
      if (existing) return;
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
      });
    });
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

  private async activeKey(): Promise<{ kid: string; key: KeyObject }> {
    if (this.active) return this.active;
    const row = await this.ds.getRepository(SigningKeyEntity).findOne({ where: { active: true }, order: { createdAt: 'DESC' } });
    if (!row) throw new Error('no active signing key');
    const pem = this.vault.open(row.privateKeyEnc, `signing-key:${row.kid}`).toString('utf8');
    this.active = { kid: row.kid, key: createPrivateKey(pem) };
    return this.active;
  }
}
