import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../chain/canonical-json';

/** What a checkpoint asserts; the signature covers its canonical JSON. */
export interface CheckpointStatement {
  v: 1;
  type: 'custodian.audit.checkpoint';
  chainId: string;
  seq: number;
  headHash: string;
  signedAt: string;
  kid: string;
}

/** A checkpoint as exported (GET audit/checkpoints, the CLI's --checkpoint file). */
export interface SignedCheckpoint extends CheckpointStatement {
  signature: string;
  /** SPKI PEM of the Ed25519 key that signed it. Trust comes from pinning it, not from reading it here. */
  publicKey: string;
}

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
}

export function signStatement(statement: CheckpointStatement, privateKey: KeyObject): string {
  return sign(null, Buffer.from(canonicalJson(statement), 'utf8'), privateKey).toString('base64url');
}

export type CheckpointCheck = { ok: true; statement: CheckpointStatement } | { ok: false; reason: string };

/**
 * Checks a checkpoint's shape and Ed25519 signature. `trusted` are the public keys (PEM) the
 * verifier believes in; a checkpoint signed by any other key, or whose kid does not match its
 * key, or whose statement was edited after signing, is rejected (A4).
 */
export function checkCheckpoint(doc: unknown, trusted: readonly string[]): CheckpointCheck {
  const d = doc as Partial<SignedCheckpoint> | null;
  if (
    !d ||
    d.v !== 1 ||
    d.type !== 'custodian.audit.checkpoint' ||
    typeof d.chainId !== 'string' ||
    !Number.isSafeInteger(d.seq) ||
    (d.seq as number) < 0 ||
    typeof d.headHash !== 'string' ||
    !/^[0-9a-f]{64}$/.test(d.headHash) ||
    typeof d.signedAt !== 'string' ||
    typeof d.kid !== 'string' ||
    typeof d.signature !== 'string' ||
    typeof d.publicKey !== 'string'
  ) {
    return { ok: false, reason: 'malformed checkpoint' };
  }
  const normalize = (pem: string): string => pem.replace(/\s+/g, '');
  if (!trusted.some((t) => normalize(t) === normalize(d.publicKey!))) return { ok: false, reason: 'signed by an untrusted key' };
  let key: KeyObject;
  try {
    key = createPublicKey(d.publicKey);
  } catch {
    return { ok: false, reason: 'malformed public key' };
  }
  if (key.asymmetricKeyType !== 'ed25519') return { ok: false, reason: 'not an Ed25519 key' };
  if (keyIdOf(key) !== d.kid) return { ok: false, reason: 'kid does not match the key' };
  const statement: CheckpointStatement = {
    v: 1,
    type: 'custodian.audit.checkpoint',
    chainId: d.chainId,
    seq: d.seq!,
    headHash: d.headHash,
    signedAt: d.signedAt,
    kid: d.kid,
  };
  const sig = Buffer.from(d.signature, 'base64url');
  if (sig.length !== 64 || !verify(null, Buffer.from(canonicalJson(statement), 'utf8'), key, sig)) {
    return { ok: false, reason: 'bad signature' };
  }
  return { ok: true, statement };
}
