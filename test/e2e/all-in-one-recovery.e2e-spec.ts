import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../support/free-port';
import { pollUntil } from '../support/poll';
import { startProcess, type ServiceProcess } from '../support/process';

/**
 * The all-in-one on its embedded PostgreSQL when things go wrong: killed with SIGKILL it starts
 * again on the same data directory by itself; with a missing or wrong master key it refuses to
 * start with a message that says which key and what to do, and is never ready.
 */
describe('all-in-one recovery and master key', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'custodian-aio-rec-'));
  const keyFile = path.join(dataDir, 'master.key');
  let pgPort: number;
  let proc: ServiceProcess | undefined;

  const launch = (): ServiceProcess =>
    (proc = startProcess('dist/all-in-one/main.js', {
      CUSTODIAN_DATA_DIR: dataDir,
      CUSTODIAN_PG_PORT: String(pgPort),
      CUSTODIAN_DEMO: 'false',
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
    }));
  const ready = async (): Promise<string> => {
    const url = `http://127.0.0.1:${await launch().port()}`;
    await pollUntil(async () => (await fetch(`${url}/health/ready`)).status === 200, { what: 'ready', timeoutMs: 30_000 });
    return url;
  };
  const exitCode = async (p: ServiceProcess): Promise<number | null> => {
    await pollUntil(() => p.proc.exitCode !== null || p.proc.signalCode !== null, { what: 'the process to exit', timeoutMs: 60_000 });
    return p.proc.exitCode;
  };
  /** A start that must be refused: exits non-zero, never listens, and says why on stderr. */
  const refused = async (): Promise<string> => {
    const p = launch();
    expect(await exitCode(p)).not.toBe(0);
    const text = p.output.join('\n');
    expect(text).not.toMatch(/running at http/);
    return text;
  };

  beforeAll(async () => {
    pgPort = await freePort();
  });

  afterAll(async () => {
    await proc?.stop('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('after kill -9, the next start stops the PostgreSQL left behind and gets ready', async () => {
    await ready();
    const killed = proc!;
    killed.proc.kill('SIGKILL');
    await exitCode(killed);
    const orphan = Number(readFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    expect(() => process.kill(orphan, 0)).not.toThrow(); // still running: the situation to recover from

    const url = await ready();
    expect(proc!.output.join('\n')).not.toContain('failed to start');
    expect((await fetch(`${url}/health/ready`)).status).toBe(200);
    expect(await proc!.stop('SIGTERM')).toBe(0);
  });

  it('a missing master.key beside the existing installation: refuses, creates no new key', async () => {
    renameSync(keyFile, `${keyFile}.saved`);
    try {
      const text = await refused();
      expect(text).toContain(`${keyFile} is missing`);
      expect(() => readFileSync(keyFile)).toThrow();
    } finally {
      renameSync(`${keyFile}.saved`, keyFile);
    }
  });

  it('a wrong, well-formed master.key: refuses with a message naming the key file', async () => {
    const original = readFileSync(keyFile, 'utf8');
    writeFileSync(keyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    try {
      const text = await refused();
      expect(text).toContain(`the master key (${keyFile}) does not open the identity signing keys`);
      expect(text).not.toContain('Custodian failed to start');
    } finally {
      writeFileSync(keyFile, original, { mode: 0o600 });
    }
  });

  it('with its own key back, the installation starts', async () => {
    await ready();
    expect(await proc!.stop('SIGTERM')).toBe(0);
  });
});
