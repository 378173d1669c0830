import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const TAG_BYTES = 16;

/**
 * AES-256-GCM for the checkpoint signing key at rest, under the master key. Sealed form:
 * `a1.<master key id>.<iv>.<tag>.<ciphertext>` (base64url parts); the additional data binds a
 * sealed value to its row, so a sealed key copied to another row does not open.
 */
export class SealedBox {
  readonly keyId: string;

  constructor(private readonly masterKey: Buffer) {
    if (masterKey.length !== 32) throw new Error('the master key must be 32 bytes');
    this.keyId = createHash('sha256').update('custodian-audit-master-key-id').update(masterKey).digest('hex').slice(0, 16);
  }

  seal(plaintext: Buffer, aad: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.masterKey, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const data = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return ['a1', this.keyId, iv, cipher.getAuthTag(), data].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
  }

  open(sealed: string, aad: string): Buffer {
    const parts = sealed.split('.');
    if (parts.length !== 5 || parts[0] !== 'a1') throw new Error('not a sealed value');
    if (parts[1] !== this.keyId) throw new Error('sealed under a different master key');
    const [iv, tag, data] = parts.slice(2).map((p) => Buffer.from(p, 'base64url'));
    if (iv.length !== 12 || tag.length !== TAG_BYTES) throw new Error('not a sealed value');
    // authTagLength pins the tag size: a truncated tag must not be accepted.
    const decipher = createDecipheriv('aes-256-gcm', this.masterKey, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(data), decipher.final()]);
  }
}
