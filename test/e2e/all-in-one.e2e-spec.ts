import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../support/free-port';
import { pollUntil } from '../support/poll';
import { startProcess, type ServiceProcess } from '../support/process';

/**
 * The newcomer's path, as `npm start` runs it: one process, embedded PostgreSQL under the data
 * directory, in-process bus, admin credentials printed once, everything kept across restarts.
 */
describe('all-in-one with embedded PostgreSQL', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'custodian-aio-'));
  let pgPort: number;
  let proc: ServiceProcess | undefined;
  let credentials: { email: string; password: string };

  const start = async (): Promise<{ url: string; readyMs: number }> => {
    const started = Date.now();
    proc = startProcess('dist/all-in-one/main.js', {
      CUSTODIAN_DATA_DIR: dataDir,
      CUSTODIAN_PG_PORT: String(pgPort),
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
    });
    const url = `http://127.0.0.1:${await proc.port()}`;
    await pollUntil(async () => (await fetch(`${url}/health/ready`)).status === 200, { what: 'ready', timeoutMs: 30_000 });
    return { url, readyMs: Date.now() - started };
  };

  beforeAll(async () => {
    pgPort = await freePort();
  });

  afterAll(async () => {
    await proc?.stop('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('first start: bootstraps, prints the admin credentials once, and they work', async () => {
    const { url, readyMs } = await start();
    process.stdout.write(`all-in-one cold start (initdb included): ready in ${readyMs} ms\n`);
    const text = proc!.output.join('\n');
    const email = /^\s+email\s+(\S+)$/m.exec(text)?.[1];
    const password = /^\s+password\s+(\S+)$/m.exec(text)?.[1];
    expect(email).toBe('admin@custodian.local');
    expect(password).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    credentials = { email: email!, password: password! };
    // The password appears in the banner only, never in a JSON log line.
    expect(proc!.output.filter((l) => l.startsWith('{') && l.includes(password!))).toEqual([]);

    const login = await fetch(`${url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(credentials),
    });
    expect(login.status).toBe(200);
    const { accessToken } = (await login.json()) as { accessToken: string };
    expect((await fetch(`${url}/api/v1/meta/objects`, { headers: { authorization: `Bearer ${accessToken}` } })).status).toBe(200);
    expect(statSync(path.join(dataDir, 'master.key')).mode & 0o777).toBe(0o600);
  });

  it('stops on SIGTERM with exit code 0', async () => {
    expect(await proc!.stop('SIGTERM')).toBe(0);
  });

  it('warm restart: same data, no second banner, same credentials', async () => {
    const { url, readyMs } = await start();
    process.stdout.write(`all-in-one warm start: ready in ${readyMs} ms\n`);
    expect(proc!.output.join('\n')).not.toContain('Bootstrap administrator');
    const login = await fetch(`${url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(credentials),
    });
    expect(login.status).toBe(200);
  });
});
