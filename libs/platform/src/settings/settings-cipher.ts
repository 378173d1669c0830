import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The settings key is derived from the master key, so a sealed setting never shares a key with other uses of it. */
function deriveKey(masterKey: Buffer): Buffer {
  if (masterKey.length !== 32) throw new Error('the master key must be 32 bytes');
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'custodian/settings/v1', 32));
}

/** The associated data binds a sealed value to its org and name: moving it to another row fails to open. */
function associatedData(orgId: string, name: string): Buffer {
  return Buffer.from(`custodian-setting\u0000${orgId}\u0000${name}`, 'utf8');
}

export class SettingsCipherError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsCipherError';
  }
}

/**
 * Seals setting values with AES-256-GCM under a key derived from the master key, the org and the
 * setting's name as associated data. The sealed text names which key sealed it (an HMAC-derived id,
 * not the key), so a rotation can tell rows it already re-sealed from those it has not.
 */
export class SettingsCipher {
  private readonly key: Buffer;
  readonly keyId: string;

  constructor(masterKey: Buffer) {
    this.key = deriveKey(masterKey);
    this.keyId = createHmac('sha256', this.key).update('key-id').digest('base64url').slice(0, 11);
  }

  seal(orgId: string, name: string, plaintext: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(associatedData(orgId, name));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, this.keyId, iv.toString('base64url'), body.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
  }

  /** The key id a sealed value was written with, or undefined when it is not a sealed value. */
  static keyIdOf(sealed: string): string | undefined {
    const parts = sealed.split('.');
    return parts.length === 5 && parts[0] === VERSION ? parts[1] : undefined;
  }

  open(orgId: string, name: string, sealed: string): string {
    const parts = sealed.split('.');
    if (parts.length !== 5 || parts[0] !== VERSION) throw new SettingsCipherError('not a sealed setting value');
    if (parts[1] !== this.keyId)
      throw new SettingsCipherError('sealed with another master key (run the key rotation with the previous key)');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(parts[2]!, 'base64url'), { authTagLength: TAG_BYTES });
      decipher.setAAD(associatedData(orgId, name));
      decipher.setAuthTag(Buffer.from(parts[4]!, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(parts[3]!, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      // Never say more: a wrong org, name or tampered text all fail the same way.
      throw new SettingsCipherError('the sealed value does not open for this org and name');
    }
  }
}
