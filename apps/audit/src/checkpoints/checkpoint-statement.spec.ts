import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { checkCheckpoint, keyIdOf, signStatement, type CheckpointStatement, type SignedCheckpoint } from './checkpoint-statement';
import { SealedBox } from './sealed-box';

function signed(): { doc: SignedCheckpoint; pem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const statement: CheckpointStatement = {
    v: 1,
    type: 'custodian.audit.checkpoint',
    chainId: randomUUID(),
    seq: 42,
    headHash: 'a'.repeat(64),
    signedAt: new Date().toISOString(),
    kid: keyIdOf(publicKey),
  };
  return { doc: { ...statement, signature: signStatement(statement, privateKey), publicKey: pem }, pem };
}

describe('checkpoints (A4)', () => {
  it('a genuine checkpoint verifies against its pinned key', () => {
    const { doc, pem } = signed();
    expect(checkCheckpoint(doc, [pem])).toMatchObject({ ok: true, statement: { seq: 42 } });
  });

  it.each<[string, (d: SignedCheckpoint) => SignedCheckpoint]>([
    ['a changed sequence', (d) => ({ ...d, seq: 43 })],
    ['a changed head hash', (d) => ({ ...d, headHash: 'b'.repeat(64) })],
    ['a changed chain', (d) => ({ ...d, chainId: randomUUID() })],
    ['a changed time', (d) => ({ ...d, signedAt: new Date(0).toISOString() })],
    ['a truncated signature', (d) => ({ ...d, signature: d.signature.slice(0, 20) })],
    ['a malformed document', (d) => ({ ...d, seq: -1 })],
  ])('%s is rejected', (_what, edit) => {
    const { doc, pem } = signed();
    expect(checkCheckpoint(edit(doc), [pem]).ok).toBe(false);
  });

  it('a checkpoint signed by another key is rejected even if it carries that key', () => {
    const genuine = signed();
    const forged = signed();
    expect(checkCheckpoint(forged.doc, [genuine.pem])).toEqual({ ok: false, reason: 'signed by an untrusted key' });
  });
});

describe('sealed box', () => {
  it('opens what it sealed, and nothing edited, moved or under another key', () => {
    const key = randomBytes(32);
    const box = new SealedBox(key);
    const sealed = box.seal(Buffer.from('secret'), 'row-1');
    expect(box.open(sealed, 'row-1').toString()).toBe('secret');
    expect(() => box.open(sealed, 'row-2')).toThrow();
    const parts = sealed.split('.');
    parts[4] = Buffer.from('SECRET').toString('base64url');
    expect(() => box.open(parts.join('.'), 'row-1')).toThrow();
    const short = sealed.split('.');
    short[3] = short[3].slice(0, 6);
    expect(() => box.open(short.join('.'), 'row-1')).toThrow();
    expect(() => new SealedBox(randomBytes(32)).open(sealed, 'row-1')).toThrow(/different master key/);
  });
});
