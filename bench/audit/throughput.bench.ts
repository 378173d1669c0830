/**
 * Audit pipeline throughput, end to end: committed outbox rows → relay → NATS JetStream → audit
 * store (batched, hash-chained, idempotent insert), with the no-loss check after every run
 * (lost = ∅, unexpected = ∅, one row per id, every chain verifies). Side by side in the same run:
 * the same pipeline into a bare unchained `INSERT … ON CONFLICT DO NOTHING` (the baseline), and
 * the verifier's speed (rows/s). Median of RUNS runs.
 *
 *   node scripts/run-ts.cjs bench/audit/throughput.bench.ts [events=20000] [runs=5]
 * Needs PostgreSQL (TEST_DATABASE_URL, default 127.0.0.1:5432) and NATS (NATS_URL, default 127.0.0.1:4222).
 */
import 'reflect-metadata';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuditEventRecorded } from '@custodian/contracts';
import {
  MetricsService,
  NatsBus,
  OutboxRelay,
  OutboxWriter,
  createServiceDataSource,
  loadConfig,
  pgJsonbArray,
  pgUuidArray,
  provisionServiceSchema,
  runMigrationsLocked,
} from '@custodian/platform';
import pino from 'pino';
import type { DataSource } from 'typeorm';
import { SERVICE_ENTITIES } from '../../apps/audit/src/entities';
import { SERVICE_MIGRATIONS } from '../../apps/audit/src/migrations';
import { AuditStoreConsumer } from '../../apps/audit/src/store/audit-store.consumer';
import { listChains, readChain } from '../../apps/audit/src/verify/chain-reader';
import { createTestDatabase } from '../../test/support/database';

const EVENTS = Number(process.argv[2] ?? 20_000);
const RUNS = Number(process.argv[3] ?? 5);
const ORGS = 10;
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const logger = pino({ level: 'error' });

interface RunResult {
  chainedEventsPerSec: number;
  baselineEventsPerSec: number;
  verifyRowsPerSec: number;
}

async function fillOutbox(ds: DataSource, orgs: string[]): Promise<string[]> {
  const writer = new OutboxWriter('objects');
  const ids: string[] = [];
  for (let done = 0; done < EVENTS; done += 500) {
    await ds.transaction(async (m) => {
      for (let i = done; i < Math.min(EVENTS, done + 500); i++) {
        const e = await writer.append(m, {
          orgId: orgs[i % orgs.length],
          action: 'objects.record.updated',
          outcome: 'success',
          target: { type: 'account', id: String(i) },
          details: { changes: { name: { from: `a${i}`, to: `b${i}` } } },
        });
        ids.push(e.id);
      }
    });
  }
  return ids;
}

/** Relay + consumer until every outbox row is stored; returns events/s. */
async function pipeline(ds: DataSource, mode: 'chained' | 'baseline'): Promise<number> {
  const namespace = `auditbench_${randomBytes(4).toString('hex')}`;
  const pubBus = await NatsBus.connect({ url: NATS_URL, namespace, name: 'audit-bench-relay' }, logger);
  const subBus = await NatsBus.connect({ url: NATS_URL, namespace, name: 'audit-bench-store' }, logger);
  // Progress is read cheaply, so the measuring does not compete with what it measures: the chain
  // heads' sequence numbers (one row per org) or the baseline's own counter — not count(*) over a
  // growing table every 10 ms. The no-loss check afterwards counts every row.
  let baselineStored = 0;
  try {
    const started = process.hrtime.bigint();
    if (mode === 'chained') {
      const config = loadConfig({ CUSTODIAN_MASTER_KEY: randomBytes(32).toString('base64') }, 'all-in-one');
      await new AuditStoreConsumer(subBus, ds, new MetricsService({}), logger, config).onApplicationBootstrap();
    } else {
      // The baseline: same bus, same concurrency and batching, a bare idempotent insert with the
      // same binary array parameters, no chain.
      const queue: Array<{ e: { id: string; orgId: string | null }; done: () => void }> = [];
      let flushing = false;
      const flush = async (): Promise<void> => {
        flushing = true;
        while (queue.length) {
          const batch = queue.splice(0, 500);
          const [{ n }] = (await ds.query(
            `WITH ins AS (INSERT INTO bench_plain (id, org_id, event) SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::jsonb[])
             ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*)::int AS n FROM ins`,
            [
              pgUuidArray(batch.map((b) => b.e.id)),
              pgUuidArray(batch.map((b) => b.e.orgId)),
              pgJsonbArray(batch.map((b) => JSON.stringify(b.e))),
            ],
          )) as Array<{ n: number }>;
          baselineStored += n;
          batch.forEach((b) => b.done());
        }
        flushing = false;
      };
      await subBus.subscribe(
        AuditEventRecorded,
        'bench-plain',
        (e) =>
          new Promise<void>((done) => {
            queue.push({ e, done });
            if (!flushing) void flush();
          }),
        { concurrency: 1024 },
      );
    }
    const relay = new OutboxRelay(ds, pubBus, new OutboxWriter('objects'), logger, { batchSize: 1000, pollMs: 20 });
    relay.start();
    for (;;) {
      const n =
        mode === 'chained'
          ? ((await ds.query(`SELECT coalesce(sum(seq), 0)::int AS n FROM audit_chain_head`)) as Array<{ n: number }>)[0].n
          : baselineStored;
      if (n >= EVENTS) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await relay.stop();
    return EVENTS / seconds;
  } finally {
    await subBus.drain();
    await pubBus.deleteStream();
    await pubBus.drain();
  }
}

async function noLossCheck(ds: DataSource, ids: string[], orgs: string[]): Promise<void> {
  const rows = (await ds.query(`SELECT id::text FROM audit_event`)) as Array<{ id: string }>;
  const stored = new Set(rows.map((r) => r.id));
  const written = new Set(ids);
  const lost = ids.filter((id) => !stored.has(id));
  const unexpected = rows.filter((r) => !written.has(r.id));
  if (lost.length || unexpected.length || rows.length !== ids.length) {
    throw new Error(
      `no-loss check failed: lost ${lost.length}, unexpected ${unexpected.length}, rows ${rows.length} for ${ids.length} ids`,
    );
  }
  for (const org of orgs) {
    const v = await readChain(ds, org);
    if (!v.ok) throw new Error(`chain ${org} does not verify at ${v.firstBadSeq}`);
  }
}

async function once(): Promise<RunResult> {
  const db = await createTestDatabase('audit_bench');
  await provisionServiceSchema(db.url, 'audit');
  const ds = createServiceDataSource({
    url: db.url,
    service: 'audit',
    entities: SERVICE_ENTITIES,
    migrations: SERVICE_MIGRATIONS,
    poolSize: 10,
  });
  await ds.initialize();
  try {
    await runMigrationsLocked(ds, 'audit');
    await ds.query(`CREATE TABLE bench_plain (id uuid PRIMARY KEY, org_id uuid, event jsonb NOT NULL)`);
    const orgs = Array.from({ length: ORGS }, () => randomUUID());
    const ids = await fillOutbox(ds, orgs);
    const chained = await pipeline(ds, 'chained');
    await noLossCheck(ds, ids, orgs);
    await ds.query(`UPDATE outbox SET published_at = NULL`);
    const baseline = await pipeline(ds, 'baseline');
    const t0 = process.hrtime.bigint();
    let rows = 0;
    for (const chain of await listChains(ds)) rows += (await readChain(ds, chain)).rows;
    const verifySeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return { chainedEventsPerSec: chained, baselineEventsPerSec: baseline, verifyRowsPerSec: rows / verifySeconds };
  } finally {
    await ds.destroy();
    await db.drop();
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main(): Promise<void> {
  const results: RunResult[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await once();
    results.push(r);
    process.stderr.write(
      `run ${i + 1}/${RUNS}: chained ${Math.round(r.chainedEventsPerSec)} ev/s, baseline ${Math.round(r.baselineEventsPerSec)} ev/s, verify ${Math.round(r.verifyRowsPerSec)} rows/s\n`,
    );
  }
  const chained = median(results.map((r) => r.chainedEventsPerSec));
  const baseline = median(results.map((r) => r.baselineEventsPerSec));
  const verify = median(results.map((r) => r.verifyRowsPerSec));
  const summary = {
    benchmark: 'audit-throughput',
    events: EVENTS,
    orgs: ORGS,
    runs: RUNS,
    node: process.version,
    cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}`,
    target: { chainedEventsPerSec: 10_000 },
    median: {
      chainedEventsPerSec: Math.round(chained),
      baselineEventsPerSec: Math.round(baseline),
      chainedVsBaseline: Number((chained / baseline).toFixed(3)),
      verifyRowsPerSec: Math.round(verify),
    },
    noLossCheck: 'passed every run (lost = ∅, unexpected = ∅, one row per id, every chain verifies)',
    runsDetail: results.map((r) => ({
      chainedEventsPerSec: Math.round(r.chainedEventsPerSec),
      baselineEventsPerSec: Math.round(r.baselineEventsPerSec),
      verifyRowsPerSec: Math.round(r.verifyRowsPerSec),
    })),
  };
  const table = [
    '| measure (median of runs) | value |',
    '|---|---|',
    `| outbox → NATS → chained store | ${summary.median.chainedEventsPerSec.toLocaleString('en-US')} events/s (target ≥ 10,000) |`,
    `| same pipeline, unchained bare insert (baseline) | ${summary.median.baselineEventsPerSec.toLocaleString('en-US')} events/s |`,
    `| chained / baseline | ${summary.median.chainedVsBaseline} |`,
    `| verify | ${summary.median.verifyRowsPerSec.toLocaleString('en-US')} rows/s |`,
  ].join('\n');
  process.stdout.write(`${table}\n\n${summary.cpus}, Node ${process.version}, ${EVENTS} events over ${ORGS} orgs, ${RUNS} runs\n`);
  const dir = path.resolve(__dirname, '..', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'audit-throughput.json'), `${JSON.stringify(summary, null, 2)}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
