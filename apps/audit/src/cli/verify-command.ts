/**
 * Offline verification of the audit log, straight from the database, against signed checkpoints.
 *
 *   node scripts/run-ts.cjs apps/audit/src/cli/verify.ts --database-url postgres://… \
 *        --checkpoint checkpoints.json [--public-key key.pem] [--schema audit] [--all]
 *
 * `--checkpoint` takes the body of GET /api/v1/audit/checkpoints (or one checkpoint object).
 * Pin the signing key with `--public-key` (exported once, kept elsewhere): without it the key in
 * the file is trusted, which proves integrity against the file but not who wrote the file.
 * Exit code: 0 every chain verifies, 1 tampering found (first bad sequence printed), 2 usage error.
 */
import { readFileSync } from 'node:fs';
import { Client } from 'pg';
import { checkCheckpoint, type SignedCheckpoint } from '../checkpoints/checkpoint-statement';
import { listChains, readChain } from '../verify/chain-reader';
import { ProgressBar } from './progress-bar';

interface Args {
  databaseUrl: string;
  checkpoint?: string;
  publicKey?: string;
  schema: string;
  all: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Partial<Args> = { schema: 'audit', all: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--database-url') args.databaseUrl = value();
    else if (a === '--checkpoint') args.checkpoint = value();
    else if (a === '--public-key') args.publicKey = value();
    else if (a === '--schema') args.schema = value();
    else if (a === '--all') args.all = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!args.databaseUrl) throw new Error('--database-url is required');
  if (!args.checkpoint && !args.all) throw new Error('give --checkpoint <file> and/or --all');
  if (!/^[a-z_][a-z0-9_]*$/.test(args.schema!)) throw new Error('--schema must be a plain schema name');
  return args as Args;
}

export async function runVerify(
  argv: string[],
  out: NodeJS.WriteStream = process.stdout,
  err: NodeJS.WriteStream = process.stderr,
): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (error) {
    err.write(`${(error as Error).message}\n`);
    return 2;
  }
  const claims = new Map<string, SignedCheckpoint>();
  let bad = false;
  const results: unknown[] = [];
  if (args.checkpoint) {
    const doc = JSON.parse(readFileSync(args.checkpoint, 'utf8')) as {
      publicKeys?: string[];
      checkpoints?: SignedCheckpoint[];
    } & SignedCheckpoint;
    const list = doc.checkpoints ?? [doc];
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
