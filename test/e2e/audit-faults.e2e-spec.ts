import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { OutboxWriter, createServiceDataSource, provisionServiceSchema, runMigrationsLocked } from '@custodian/platform';
import type { DataSource } from 'typeorm';
import { SERVICE_ENTITIES } from '../../apps/audit/src/entities';
import { SERVICE_MIGRATIONS } from '../../apps/audit/src/migrations';
import { readChain } from '../../apps/audit/src/verify/chain-reader';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { freePort } from '../support/free-port';
import { pollUntil } from '../support/poll';
import { ROOT, startProcess, type ServiceProcess } from '../support/process';

const NATS_SERVER = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';

/** A nats-server of our own (JetStream, file store, loopback, free port) that this test may kill. */
class OwnNats {
  proc: ChildProcess | undefined;
  readonly dir = mkdtempSync(path.join(tmpdir(), 'custodian-audit-nats-'));
  constructor(readonly port: number) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.proc = spawn(NATS_SERVER, ['-js', '-sd', this.dir, '-p', String(this.port), '-a', '127.0.0.1'], { stdio: 'ignore' });
    await pollUntil(() => canConnect(this.port), { what: 'nats-server to listen', timeoutMs: 10_000 });
  }

  async stop(signal: NodeJS.Signals): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((resolve) => p.once('exit', resolve));
    p.kill(signal);
    await exited;
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** The relay-only helper process (test/e2e/audit-fault-relay.ts). */
function startRelay(env: Record<string, string>): ServiceProcess & { ready(): Promise<unknown> } {
  const proc = spawn(process.execPath, [path.join(ROOT, 'scripts/run-ts.cjs'), 'test/e2e/audit-fault-relay.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  proc.stdout?.on('data', (c: Buffer) => output.push(c.toString()));
  proc.stderr?.on('data', (c: Buffer) => output.push(c.toString()));
  const exit = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return {
    proc,
    output,
    port: () => Promise.resolve(0),
    ready: () => pollUntil(() => output.join('').includes('relay running'), { what: 'relay to start', timeoutMs: 20_000 }),
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      return exit;
    },
  };
}

/**
 * A7, F2, F4 for real: N unique audit events written to an outbox while the relay, the audit
 * service (its consumer) and nats-server are killed (-9) and restarted, nats-server also stopped
 * gracefully, and the audit service stopped with SIGTERM; then everything drains and each event
 * is in the hash chain exactly once. The relay pauses while the consumer lags (F5), so its pause and
 * resume run under the same faults. Uses its own nats-server on a free port and kills only it.
 */
describe('audit under faults (own nats-server)', () => {
  const N_BATCHES = 120;
  const BATCH = 25;
  let db: TestDatabase;
  let ds: DataSource;
  let nats: OwnNats;
  let audit: ServiceProcess | undefined;
  let relay: ReturnType<typeof startRelay> | undefined;
  const orgId = randomUUID();
  const namespace = `auditfault_${randomBytes(4).toString('hex')}`;
  const masterKey = randomBytes(32).toString('base64');
  const outbox = new OutboxWriter('audit');
  const env = (): Record<string, string> => ({
    DATABASE_URL: db.url,
    NATS_URL: nats.url,
    CUSTODIAN_BUS_NAMESPACE: namespace,
    CUSTODIAN_MASTER_KEY: masterKey,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    CUSTODIAN_SHUTDOWN_GRACE_MS: '2000',
  });
  const startAudit = async (): Promise<void> => {
    audit = startProcess('dist/apps/audit/main.js', env());
    await audit.port();
  };
  const startRelayProcess = async (): Promise<void> => {
    // A small lag limit: while the consumer is down (kill -9, SIGTERM) the relay also pauses and resumes (F5).
    relay = startRelay({ ...env(), CUSTODIAN_AUDIT_MAX_LAG: '60' });
    await relay.ready();
  };

  beforeAll(async () => {
    db = await createTestDatabase('audit_faults', { migrated: true });
    await provisionServiceSchema(db.url, 'audit');
    ds = createServiceDataSource({ url: db.url, service: 'audit', entities: SERVICE_ENTITIES, migrations: SERVICE_MIGRATIONS });
    await ds.initialize();
    await runMigrationsLocked(ds, 'audit');
    nats = new OwnNats(await freePort());
    await nats.start();
    await Promise.all([startAudit(), startRelayProcess()]);
  }, 60_000);

  afterAll(async () => {
    await relay?.stop('SIGKILL');
    await audit?.stop('SIGKILL');
    await nats?.stop('SIGKILL');
    nats?.cleanup();
    await ds?.destroy();
    await db?.drop();
  });

  const writeBatch = (b: string): Promise<string[]> =>
    ds.transaction(async (m) => {
      const out: string[] = [];
      for (let i = 0; i < BATCH; i++) {
        const e = await outbox.append(m, {
          orgId,
          action: 'record.updated',
          outcome: 'success',
          target: { type: 'account', id: `${b}-${i}` },
        });
        out.push(e.id);
      }
      return out;
    });

  it('A7/F2/F4: kill -9 relay, consumer and nats-server (and SIGTERM) while publishing → lost = ∅, unexpected = ∅, one row per id', async () => {
    const chaos: Record<number, () => Promise<void>> = {
      15: async () => {
        await relay!.stop('SIGKILL');
        await startRelayProcess();
      },
      30: async () => {
        await audit!.stop('SIGKILL');
        // F5: events keep coming while the consumer is gone; past the lag limit the relay holds back.
        for (let extra = 0; extra < 4; extra++) written.push(...(await writeBatch(`down-${extra}`)));
        await pollUntil(() => relay!.output.join('').includes('outbox relay paused'), { what: 'relay paused for lag', timeoutMs: 20_000 });
        await startAudit();
      },
      45: async () => {
        await nats.stop('SIGKILL');
        await nats.start();
      },
      60: async () => {
        await nats.stop('SIGTERM'); // graceful restart under load
        await nats.start();
      },
      75: async () => {
        await Promise.all([relay!.stop('SIGKILL'), audit!.stop('SIGKILL'), nats.stop('SIGKILL')]);
        await nats.start();
        await Promise.all([startAudit(), startRelayProcess()]);
      },
      90: async () => {
        // F4: SIGTERM drains: in-flight work finishes, the process exits 0, unacked messages come back.
        expect(await audit!.stop('SIGTERM')).toBe(0);
        await startAudit();
      },
    };
    const written: string[] = [];
    for (let b = 0; b < N_BATCHES; b++) {
      written.push(...(await writeBatch(String(b))));
      await chaos[b]?.();
    }

    await pollUntil(
      async () => {
        const [r] = await ds.query(
          `SELECT (SELECT count(*)::int FROM audit_event WHERE chain_id = $1) AS stored, (SELECT count(*)::int FROM outbox WHERE published_at IS NULL) AS unsent`,
          [orgId],
        );
        return r.stored >= written.length && r.unsent === 0;
      },
      { what: 'every event stored and the outbox drained', timeoutMs: 90_000, intervalMs: 200 },
    );
    const stored = (await ds.query(`SELECT id::text FROM audit_event WHERE chain_id = $1`, [orgId])) as Array<{ id: string }>;
    const storedIds = new Set(stored.map((r) => r.id));
    const writtenIds = new Set(written);
    const lost = written.filter((id) => !storedIds.has(id));
    const unexpected = stored.map((r) => r.id).filter((id) => !writtenIds.has(id));
    expect(lost).toEqual([]);
    expect(unexpected).toEqual([]);
    expect(stored.length).toBe(written.length); // one row per id (also the primary key)
    expect(await readChain(ds, orgId)).toMatchObject({ ok: true, headSeq: written.length });
    expect((await ds.query(`SELECT count(*)::int AS n FROM audit_dead_letter`))[0].n).toBe(0);
  }, 240_000);
});
