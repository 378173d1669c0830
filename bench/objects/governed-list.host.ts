/**
 * One server of the governed-list bench, in a process of its own (forked by governed-list.bench.ts
 * through scripts/run-ts.cjs, with an IPC channel). Every side of the bench runs in such a process,
 * started the same way, so no side shares an event loop, a heap, a garbage collector, background
 * timers or V8's feedback with another, and each side's CPU time per request is its own.
 *   BENCH_HOST=governed: an all-in-one from this process's environment (the parent sets it).
 *   BENCH_HOST=bare: a bare node:http handler running BENCH_BARE_SQL with BENCH_BARE_PARAMS (JSON) on
 *   DATABASE_URL (search path objects), answering the rows as JSON — no auth, no policy, no Nest.
 * Messages: it sends {ready, url} once listening; it answers 'cpu' with {cpu: process.cpuUsage()}
 * and stops (pools closed, then exit) on 'stop'.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'pg';

async function main(): Promise<void> {
  if (!process.send) throw new Error('governed-list.host.ts runs as a forked child of governed-list.bench.ts');
  let url: string;
  let stop: () => Promise<void>;
  if (process.env.BENCH_HOST === 'bare') {
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
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    stop = async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await pool.end();
    };
  } else {
    // Loaded only here: the bare side carries none of the application.
    const { startAllInOne } = await import('../../all-in-one/all-in-one');
    const host = await startAllInOne(process.env);
    url = host.url;
    stop = () => host.stop();
  }
  process.on('message', (message) => {
    if (message === 'cpu') process.send!({ cpu: process.cpuUsage() });
    if (message === 'stop')
      void stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
  });
  process.send({ ready: true, url });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
