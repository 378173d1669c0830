import { ChainVerifier, type ChainRow, type ChainVerdict, type CheckpointClaim } from '../chain/chain-verifier';

/** Anything that runs SQL: a TypeORM DataSource/EntityManager (rows) or a pg Client ({ rows }). */
export interface SqlRunner {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

export interface ChainTables {
  live: string;
  archive?: string;
}

const IDENT = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/;
const PAGE = 5000;

async function rowsOf(runner: SqlRunner, sql: string, params: unknown[]): Promise<Array<Record<string, unknown>>> {
  const r = (await runner.query(sql, params)) as Array<Record<string, unknown>> | { rows: Array<Record<string, unknown>> };
  return Array.isArray(r) ? r : r.rows;
}

/** Every chain id present (live or archived), for the whole-log verify. */
export async function listChains(runner: SqlRunner, tables: ChainTables = DEFAULT_TABLES): Promise<string[]> {
  const sql = tables.archive
    ? `SELECT chain_id::text FROM ${ident(tables.live)} UNION SELECT chain_id::text FROM ${ident(tables.archive)}`
    : `SELECT DISTINCT chain_id::text FROM ${ident(tables.live)}`;
  return (await rowsOf(runner, sql, [])).map((r) => String(r.chain_id)).sort();
}

export const DEFAULT_TABLES: ChainTables = { live: 'audit_event', archive: 'audit_event_archive' };

/**
 * Streams one chain, archived rows and live rows together, in sequence order (pages of 5,000 by
 * keyset), through the verifier. `onProgress` is called after every page.
 */
export async function readChain(
  runner: SqlRunner,
  chainId: string,
  opts: { tables?: ChainTables; checkpoint?: CheckpointClaim; onProgress?: (rows: number) => void } = {},
): Promise<ChainVerdict> {
  const tables = opts.tables ?? DEFAULT_TABLES;
  const select = (t: string): string =>
    `SELECT id::text, seq::text AS seq, prev_hash, row_hash, event FROM ${ident(t)} WHERE chain_id = $1 AND seq > $2`;
  const source = tables.archive ? `(${select(tables.live)} UNION ALL ${select(tables.archive)}) x` : `(${select(tables.live)}) x`;
  const verifier = new ChainVerifier(chainId, opts.checkpoint);
  let after = 0;
  let seen = 0;
  for (;;) {
    const page = await rowsOf(runner, `SELECT * FROM ${source} ORDER BY seq::bigint, id LIMIT ${PAGE}`, [chainId, after]);
    if (page.length === 0) break;
    let good = true;
    for (const r of page) {
      const row: ChainRow = {
        id: String(r.id),
        seq: Number(r.seq),
        prevHash: String(r.prev_hash),
        rowHash: String(r.row_hash),
        event: r.event as Record<string, unknown>,
      };
      if (!verifier.push(row)) {
        good = false;
        break;
      }
    }
    seen += page.length;
    opts.onProgress?.(seen);
    if (!good || page.length < PAGE) break;
    after = Number(page[page.length - 1].seq);
  }
  return verifier.finish();
}

function ident(name: string): string {
  if (!IDENT.test(name)) throw new Error(`not a plain table name: ${name}`);
  return name;
}
