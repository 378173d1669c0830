/**
 * The bare side of the governed-list bench, in a process of its own (forked by
 * governed-list.bench.ts through scripts/run-ts.cjs, like governed-list.host.ts): a plain node:http
 * handler running BENCH_BARE_SQL with BENCH_BARE_PARAMS (JSON) on DATABASE_URL (search path objects)
 * and answering the rows as JSON — no auth, no policy, no Nest, none of the application loaded.
 * Messages: governed-list.ipc.ts.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'pg';
import { serveBenchMessages } from './governed-list.ipc';

async function main(): Promise<void> {
  const pool = new Pool({
    connectionString: process.env.DATABASE_URL,
    max: Number(process.env.BENCH_BARE_POOL ?? 8),
    options: '-c search_path=objects',
  });
  const text = process.env.BENCH_BARE_SQL!;
  const params = JSON.parse(process.env.BENCH_BARE_PARAMS!) as unknown[];
  const server = http.createServer((_req, res) => {
    pool.query(text, params).then(
      (r) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ items: r.rows.slice(0, 50), nextCursor: null }));
      },
      () => {
        res.writeHead(500);
        res.end();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  serveBenchMessages(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await pool.end();
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
