/**
 * `custodian audit verify --offline`: the audit log straight from the database, against signed
 * checkpoints (docs/audit.md). Local: it runs here, never over the API.
 *
 * `checkpoint` is a file with the body of GET /api/v1/audit/checkpoints (or one checkpoint object).
 * Pin the signing key with `publicKey` (exported once, kept elsewhere): without it the key in the
 * file is trusted, which proves integrity against the file but not who wrote the file.
 * Exit code: 0 every chain verifies, 1 tampering found (first bad sequence printed); the arguments
 * were checked by cli/run.ts (2 on bad ones).
 */
import { readFileSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { Client } from 'pg';
import { checkCheckpoint, type SignedCheckpoint } from '../apps/audit/src/checkpoints/checkpoint-statement';
import { readCheckpointFile } from '../apps/audit/src/checkpoints/checkpoint-file';
import { listChains, readChain } from '../apps/audit/src/verify/chain-reader';
import { ProgressBar } from './progress-bar';

export interface OfflineVerifyOptions {
  databaseUrl: string;
  checkpoint?: string;
  publicKey?: string;
  /** A plain schema name (checked by the caller: it is spliced into SQL). */
  schema: string;
  all: boolean;
}

export async function verifyOffline(args: OfflineVerifyOptions, out: Writable, err: Writable & { isTTY?: boolean }): Promise<number> {
  const claims = new Map<string, SignedCheckpoint>();
  let bad = false;
  const results: unknown[] = [];
  if (args.checkpoint) {
    // The body of GET audit/checkpoints, now ({items, nextCursor, publicKeys}) or before ADR 0018 ({publicKeys, checkpoints}).
    const doc = readCheckpointFile(JSON.parse(readFileSync(args.checkpoint, 'utf8')));
    const list = doc.checkpoints as SignedCheckpoint[];
    const trusted = args.publicKey ? [readFileSync(args.publicKey, 'utf8')] : (doc.publicKeys ?? list.map((c) => c.publicKey));
    if (!args.publicKey) err.write('warning: signing key not pinned (--public-key); trusting the key in the checkpoint file\n');
    for (const c of list) {
      const check = checkCheckpoint(c, trusted);
      if (!check.ok) {
        bad = true;
        results.push({ chainId: c?.chainId, ok: false, problem: 'checkpoint_rejected', reason: check.reason, checkpointSeq: c?.seq });
        continue;
      }
      const current = claims.get(c.chainId);
      if (!current || current.seq < c.seq) claims.set(c.chainId, c);
    }
  }
  const client = new Client({ connectionString: args.databaseUrl, application_name: 'custodian-audit-verify' });
  await client.connect();
  try {
    await client.query('SET default_transaction_read_only = on');
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ'); // one consistent snapshot
    const tables = { live: `${args.schema}.audit_event`, archive: `${args.schema}.audit_event_archive` };
    const chains = new Set(claims.keys());
    if (args.all) for (const c of await listChains(client, tables)) chains.add(c);
    for (const chainId of [...chains].sort()) {
      const { rows } = await client.query<{ n: string }>(
        `SELECT (SELECT count(*) FROM ${tables.live} WHERE chain_id = $1) + (SELECT count(*) FROM ${tables.archive} WHERE chain_id = $1) AS n`,
        [chainId],
      );
      const bar = new ProgressBar(`chain ${chainId.slice(0, 8)}`, Number(rows[0].n), err);
      const claim = claims.get(chainId);
      const verdict = await readChain(client, chainId, {
        tables,
        checkpoint: claim ? { seq: claim.seq, headHash: claim.headHash } : undefined,
        onProgress: (n) => bar.update(n),
      });
      bar.finish(verdict.rows);
      if (!verdict.ok) bad = true;
      results.push({ ...verdict, checkpointSeq: claim?.seq ?? null });
    }
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
  out.write(`${JSON.stringify({ ok: !bad, chains: results }, null, 2)}\n`);
  return bad ? 1 : 0;
}
