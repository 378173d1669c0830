/**
 * Revocation freshness (R10, I7/I8): the time from a revoke's commit (the 204 of logout / API-key
 * revoke reaching the client) until ANOTHER process — the objects service, distributed mode over
 * NATS — refuses the credential. Side by side: the same request with a live credential (the floor:
 * one HTTP round trip + one identity lookup over NATS).
 *   node scripts/build.mjs && node scripts/run-ts.cjs bench/identity/revocation.bench.ts [iterations=200]
 * Needs PostgreSQL (TEST_DATABASE_URL) and NATS (NATS_URL) on this machine; traffic goes to 127.0.0.1 only.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from 'nats';
import { createTestDatabase } from '../../test/support/database';
import { ROOT, startProcess, type ServiceProcess } from '../../test/support/process';

const ITERATIONS = Number(process.argv[2] ?? 200);
const ADMIN = { email: 'bench@revocation.local', password: 'revocation-bench-password' };

function percentile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function main(): Promise<void> {
  process.env.TEST_DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';
  const natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
  execFileSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs')], { stdio: 'ignore' });
  const db = await createTestDatabase('bench_revocation');
  const namespace = `bench${randomBytes(4).toString('hex')}`;
  const env = {
    DATABASE_URL: db.url,
    NATS_URL: natsUrl,
    CUSTODIAN_BUS_NAMESPACE: namespace,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'error',
    CUSTODIAN_MASTER_KEY: randomBytes(32).toString('base64'),
    CUSTODIAN_ADMIN_EMAIL: ADMIN.email,
    CUSTODIAN_ADMIN_PASSWORD: ADMIN.password,
  };
  const procs: ServiceProcess[] = [];
  try {
    const identity = startProcess('dist/apps/identity/main.js', { ...env, LOG_LEVEL: 'info' });
    procs.push(identity);
    const identityUrl = `http://127.0.0.1:${await identity.port()}`;
    const objects = startProcess('dist/apps/objects/main.js', { ...env, LOG_LEVEL: 'info' });
    procs.push(objects);
    const objectsUrl = `http://127.0.0.1:${await objects.port()}`;

    const json = { 'content-type': 'application/json' };
    const login = async (): Promise<{ accessToken: string }> => {
      const res = await fetch(`${identityUrl}/api/v1/auth/login`, { method: 'POST', headers: json, body: JSON.stringify(ADMIN) });
      if (res.status !== 200) throw new Error(`login ${res.status}`);
      return (await res.json()) as { accessToken: string };
    };
    const atObjects = async (credential: string): Promise<number> =>
      (await fetch(`${objectsUrl}/api/v1/meta/objects`, { headers: { authorization: `Bearer ${credential}` } })).status;
    const { accessToken: admin } = await login();

    const live: number[] = [];
    const session: number[] = [];
    const apiKey: number[] = [];
    /** Requests answered 200 after the revoke had committed (must stay 0). */
    let servedAfterRevoke = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      // Floor: a live credential through the same path.
      const { accessToken } = await login();
      if ((await atObjects(accessToken)) !== 200) throw new Error('warm-up refused');
      let t = performance.now();
      await atObjects(accessToken);
      live.push(performance.now() - t);

      // Session: logout at identity, then the objects process must refuse.
      const out = await fetch(`${identityUrl}/api/v1/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${accessToken}` } });
      if (out.status !== 204) throw new Error(`logout ${out.status}`);
      t = performance.now();
      let status = await atObjects(accessToken);
      while (status !== 401) {
        if (status === 200) servedAfterRevoke++;
        status = await atObjects(accessToken);
      }
      session.push(performance.now() - t);

      // API key: revoke at identity, then the objects process must refuse.
      const created = (await (
        await fetch(`${identityUrl}/api/v1/api-keys`, {
          method: 'POST',
          headers: { ...json, authorization: `Bearer ${admin}` },
          body: JSON.stringify({ name: `b${i}` }),
        })
      ).json()) as { id: string; key: string };
      if ((await atObjects(created.key)) !== 200) throw new Error('api key warm-up refused');
      const revoked = await fetch(`${identityUrl}/api/v1/api-keys/${created.id}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${admin}` },
      });
      if (revoked.status !== 204) throw new Error(`revoke ${revoked.status}`);
      t = performance.now();
      status = await atObjects(created.key);
      while (status !== 401) {
        if (status === 200) servedAfterRevoke++;
        status = await atObjects(created.key);
      }
      apiKey.push(performance.now() - t);
    }

    const rows = [
      { case: 'live credential (floor)', samples: live },
      { case: 'session revoked → refused', samples: session },
      { case: 'API key revoked → refused', samples: apiKey },
    ].map((r) => ({
      case: r.case,
      n: r.samples.length,
      p50_ms: +percentile(r.samples, 50).toFixed(2),
      p99_ms: +percentile(r.samples, 99).toFixed(2),
      max_ms: +Math.max(...r.samples).toFixed(2),
    }));
    const floorP50 = rows[0].p50_ms;
    const table = rows.map((r) => ({ ...r, ratio_p50_vs_floor: +(r.p50_ms / floorP50).toFixed(2) }));
    console.table(table);
    console.log(`requests served after a committed revoke: ${servedAfterRevoke}`);
    const result = {
      bench: 'identity-revocation',
      date: new Date().toISOString(),
      node: process.version,
      cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}`,
      mode: 'distributed (identity + objects as separate processes, NATS, PostgreSQL)',
      note: 'time from the revoke response (commit) to the first 401 at the objects process, whose principal cache holds the credential (warmed by two requests) until the revocation broadcast drops it',
      targetP99Ms: 100,
      servedAfterRevoke,
      results: table,
    };
    mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
    writeFileSync(path.join(ROOT, 'bench/results/identity-revocation.json'), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await Promise.all(procs.map((p) => p.stop('SIGTERM')));
    const nc = await connect({ servers: natsUrl });
    await (await nc.jetstreamManager()).streams.delete(`${namespace.toUpperCase()}_EVENTS`).catch(() => undefined);
    await nc.close();
    await db.drop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
