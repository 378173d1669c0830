// Time from process start to /health/ready = 200 for the all-in-one host on embedded PostgreSQL:
// one cold start (initdb, migrations, bootstrap) and N warm restarts on the same data directory.
//   npm run build && node bench/startup.bench.mjs [runs=5]
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const runs = Number(process.argv[2] ?? 5);
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'custodian-bench-'));

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function once(httpPort, pgPort) {
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, [path.join(root, 'dist/all-in-one/main.js')], {
    env: {
      ...process.env,
      CUSTODIAN_DATA_DIR: dataDir,
      PORT: String(httpPort),
      CUSTODIAN_PG_PORT: String(pgPort),
      LOG_LEVEL: 'error',
      DATABASE_URL: '',
      NATS_URL: '',
    },
    stdio: 'ignore',
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (Date.now() > deadline) throw new Error('not ready within 60 s');
    try {
      const res = await fetch(`http://127.0.0.1:${httpPort}/health/ready`);
      if (res.status === 200) break;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  return ms;
}

try {
  const httpPort = await freePort();
  const pgPort = await freePort();
  const cold = await once(httpPort, pgPort);
  const warm = [];
  for (let i = 0; i < runs; i++) warm.push(await once(httpPort, pgPort));
  warm.sort((a, b) => a - b);
  const median = warm[Math.floor(warm.length / 2)];
  const result = {
    benchmark: 'all-in-one startup to /health/ready',
    node: process.version,
    cpu: os.cpus()[0]?.model,
    cores: os.cpus().length,
    coldMs: Math.round(cold),
    warmMs: warm.map(Math.round),
    warmMedianMs: Math.round(median),
    warmMaxMs: Math.round(warm[warm.length - 1]),
  };
  console.table([
    { start: 'cold (initdb + migrations + bootstrap)', ms: result.coldMs },
    { start: `warm median of ${runs}`, ms: result.warmMedianMs },
    { start: 'warm max', ms: result.warmMaxMs },
  ]);
  console.log(`${result.node} on ${result.cores}x ${result.cpu}`);
  mkdirSync(path.join(root, 'bench/results'), { recursive: true });
  writeFileSync(path.join(root, 'bench/results/startup.json'), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
