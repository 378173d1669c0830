import { randomUUID } from 'node:crypto';
import { canonicalJson } from './canonical-json';
import { GENESIS_HASH, eventHash } from './chain-hash';
import { ChainVerifier, type ChainRow } from './chain-verifier';

const chainId = randomUUID();

function chain(n: number): ChainRow[] {
  const rows: ChainRow[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const id = randomUUID();
    const event = { id, orgId: chainId, action: 'record.updated', details: { n: seq, name: `r${seq}` } };
    const rowHash = eventHash(chainId, seq, prev, event);
    rows.push({ id, seq, prevHash: prev, rowHash, event });
    prev = rowHash;
  }
  return rows;
}

function verify(rows: ChainRow[], checkpoint?: { seq: number; headHash: string }): ReturnType<ChainVerifier['finish']> {
  const v = new ChainVerifier(chainId, checkpoint);
  for (const r of rows) if (!v.push(r)) break;
  return v.finish();
}

describe('canonical JSON', () => {
  it('sorts keys at every depth, drops undefined, and has no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, 'x', null], c: true }, u: undefined })).toBe('{"a":{"c":true,"d":[1,"x",null]},"b":1}');
  });
  it('refuses values JSON cannot carry faithfully', () => {
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(/non-finite/);
    expect(() => canonicalJson({ n: BigInt(1) })).toThrow(/bigint/);
  });
});

describe('chain verifier (A3)', () => {
  it('an intact chain verifies, also against a checkpoint at its head', () => {
    const rows = chain(10);
    expect(verify(rows)).toMatchObject({ ok: true, rows: 10, headSeq: 10, headHash: rows[9].rowHash });
    expect(verify(rows, { seq: 10, headHash: rows[9].rowHash })).toMatchObject({ ok: true });
    expect(verify(rows, { seq: 4, headHash: rows[3].rowHash })).toMatchObject({ ok: true });
  });

  it('a flipped byte in an event names that sequence number', () => {
    const rows = chain(10);
    rows[6] = { ...rows[6], event: { ...rows[6].event, action: 'record.updatee' } };
    expect(verify(rows)).toMatchObject({ ok: false, firstBadSeq: 7, problem: 'hash_mismatch' });
  });

  it('a flipped byte in a stored hash names that row (or the next one, whose link breaks)', () => {
    const rows = chain(10);
    const h = rows[2].rowHash;
    rows[2] = { ...rows[2], rowHash: `${h[0] === 'a' ? 'b' : 'a'}${h.slice(1)}` };
    expect(verify(rows)).toMatchObject({ ok: false, firstBadSeq: 3 });
  });

  it('a deleted row names the missing sequence number', () => {
    const rows = chain(10);
    rows.splice(4, 1);
    expect(verify(rows)).toMatchObject({ ok: false, firstBadSeq: 5, problem: 'sequence_gap' });
  });

  it('a deleted row with the later rows renumbered breaks the link there', () => {
    const rows = chain(10);
    rows.splice(4, 1);
    for (let i = 4; i < rows.length; i++) rows[i] = { ...rows[i], seq: i + 1 };
    expect(verify(rows)).toMatchObject({ ok: false, firstBadSeq: 5, problem: 'broken_link' });
  });

  it('two rows swapped (reordered) names the first of them', () => {
    const rows = chain(10);
    const a = rows[3];
    const b = rows[4];
    rows[3] = { ...b, seq: 4 };
    rows[4] = { ...a, seq: 5 };
    expect(verify(rows)).toMatchObject({ ok: false, firstBadSeq: 4 });
  });

  it('a cut tail is invisible without a checkpoint and named with one', () => {
    const rows = chain(10);
    const checkpoint = { seq: 10, headHash: rows[9].rowHash };
    const cut = rows.slice(0, 7);
    expect(verify(cut)).toMatchObject({ ok: true, headSeq: 7 });
    expect(verify(cut, checkpoint)).toMatchObject({ ok: false, firstBadSeq: 8, problem: 'truncated' });
  });

  it('a chain rewritten from some row on (all hashes recomputed) disagrees with the checkpoint', () => {
    const rows = chain(10);
    const checkpoint = { seq: 10, headHash: rows[9].rowHash };
    let prev = rows[5].rowHash;
    for (let i = 6; i < 10; i++) {
      const event = { ...rows[i].event, action: 'rewritten' };
      const rowHash = eventHash(chainId, i + 1, prev, event);
      rows[i] = { ...rows[i], prevHash: prev, rowHash, event };
      prev = rowHash;
    }
    expect(verify(rows)).toMatchObject({ ok: true });
    expect(verify(rows, checkpoint)).toMatchObject({ ok: false, firstBadSeq: 10, problem: 'checkpoint_mismatch' });
  });

  it('a row moved to another chain does not verify there', () => {
    const rows = chain(1);
    const v = new ChainVerifier(randomUUID());
    v.push(rows[0]);
    expect(v.finish()).toMatchObject({ ok: false, firstBadSeq: 1, problem: 'hash_mismatch' });
  });
});
