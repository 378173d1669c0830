import { GENESIS_HASH, eventHash } from './chain-hash';

export interface ChainRow {
  id: string;
  seq: number;
  prevHash: string;
  rowHash: string;
  event: Record<string, unknown>;
}

export type ChainProblem = 'hash_mismatch' | 'broken_link' | 'sequence_gap' | 'id_mismatch' | 'checkpoint_mismatch' | 'truncated';

export interface ChainVerdict {
  ok: boolean;
  chainId: string;
  /** Rows checked. */
  rows: number;
  headSeq: number;
  headHash: string;
  /** The first sequence number that does not verify (the expected one where a row is missing). */
  firstBadSeq?: number;
  problem?: ChainProblem;
}

export interface CheckpointClaim {
  seq: number;
  headHash: string;
}

/**
 * Walks one chain in sequence order (rows must arrive sorted by seq) and names the first bad
 * sequence number: a row whose content does not match its hash, a link to the wrong previous
 * hash, a missing or repeated sequence number, or — against a signed checkpoint — a chain that
 * ends before the checkpoint or differs from it at the checkpointed sequence.
 */
export class ChainVerifier {
  private expectedSeq = 1;
  private prev = GENESIS_HASH;
  private count = 0;
  private bad: { seq: number; problem: ChainProblem } | undefined;

  constructor(
    readonly chainId: string,
    private readonly checkpoint?: CheckpointClaim,
  ) {}

  /** Feeds the next row; returns false once the chain is known bad (stop feeding). */
  push(row: ChainRow): boolean {
    if (this.bad) return false;
    this.count++;
    if (row.seq !== this.expectedSeq) return this.fail(this.expectedSeq, 'sequence_gap');
    if (row.prevHash !== this.prev) return this.fail(row.seq, 'broken_link');
    if (row.event.id !== row.id) return this.fail(row.seq, 'id_mismatch');
    if (eventHash(this.chainId, row.seq, row.prevHash, row.event) !== row.rowHash) return this.fail(row.seq, 'hash_mismatch');
    if (this.checkpoint && row.seq === this.checkpoint.seq && row.rowHash !== this.checkpoint.headHash) {
      return this.fail(row.seq, 'checkpoint_mismatch');
    }
    this.prev = row.rowHash;
    this.expectedSeq++;
    return true;
  }

  finish(): ChainVerdict {
    const headSeq = this.expectedSeq - 1;
    if (!this.bad && this.checkpoint && headSeq < this.checkpoint.seq) this.bad = { seq: headSeq + 1, problem: 'truncated' };
    return {
      ok: !this.bad,
      chainId: this.chainId,
      rows: this.count,
      headSeq,
      headHash: this.prev,
      ...(this.bad ? { firstBadSeq: this.bad.seq, problem: this.bad.problem } : {}),
    };
  }

  private fail(seq: number, problem: ChainProblem): false {
    this.bad = { seq, problem };
    return false;
  }
}
