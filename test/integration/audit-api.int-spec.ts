import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { ChainVerifier } from '../../apps/audit/src/chain/chain-verifier';
import { eventHash } from '../../apps/audit/src/chain/chain-hash';
import { CheckpointService } from '../../apps/audit/src/checkpoints/checkpoint.service';
import { AuditEventRecorded } from '@custodian/contracts';
import { DEFAULT_MAX_BACKLOG, OutboxRelay, OutboxWriter } from '@custodian/platform';
import { runCustodian } from '../support/cli';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { pollUntil } from '../support/poll';
import { auditEvent, startAuditHost, type AuditHost } from './audit-harness';

interface EventView {
  seq: number;
  archived: boolean;
  event: { id: string; action: string; actor: { userId?: string }; orgId: string | null };
}

/** The audit API on the all-in-one host: filters, keyset paging, org wall, capabilities, verify, export, archive. */
describe('audit API', () => {
  let db: TestDatabase;
  let a: AuditHost;
  let base: string;
  let pg: Client;
  const orgId = randomUUID();
  const otherOrg = randomUUID();
  const users = {
    admin: { userId: randomUUID(), orgId, capabilities: ['view_audit', 'manage_audit'] },
    viewer: { userId: randomUUID(), orgId, capabilities: ['view_audit'] },
    nobody: { userId: randomUUID(), orgId, capabilities: ['manage_users'] },
    stranger: { userId: randomUUID(), orgId: otherOrg, capabilities: ['view_audit', 'manage_audit'] },
  };
  const admin = { accessToken: '', orgId };
  const tokens: Record<'viewer' | 'nobody' | 'stranger', string> = { viewer: '', nobody: '', stranger: '' };

  const get = (path: string, token: string): Promise<Response> =>
    fetch(`${base}/api/v1/audit/${path}`, { headers: { authorization: `Bearer ${token}` } });
  const post = (path: string, token: string, body: unknown = {}): Promise<Response> =>
    fetch(`${base}/api/v1/audit/${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    db = await createTestDatabase('audit_api', { migrated: true });
    a = await startAuditHost(db.url);
    base = a.host.url;
    pg = new Client({ connectionString: db.url });
    await pg.connect();
    admin.accessToken = await a.tokenFor(users.admin);
    for (const who of ['viewer', 'nobody', 'stranger'] as const) tokens[who] = await a.tokenFor(users[who]);
    const events = [
      ...Array.from({ length: 7 }, (_, i) =>
        auditEvent(orgId, { action: 'auth.login', actor: { userId: i % 2 ? users.admin.userId : users.viewer.userId } }),
      ),
      auditEvent(orgId, { action: 'record.updated', outcome: 'denied' }),
      auditEvent(otherOrg, { action: 'auth.login' }),
    ];
    for (const e of events) await a.bus.publish(AuditEventRecorded, e, { messageId: e.id });
    await pollUntil(async () => (await pg.query(`SELECT count(*)::int AS n FROM audit.audit_event`)).rows[0].n === events.length, {
      what: 'seeded events stored',
    });
  });

  afterAll(async () => {
    await pg?.end();
    await a?.stop();
    await db?.drop();
  });

  it('lists the org events newest first, filtered, and keyset pages concatenate to the full list', async () => {
    const all = (await (await get('events?limit=500', admin.accessToken)).json()) as { items: EventView[]; nextCursor: string | null };
    expect(all.items.length).toBeGreaterThanOrEqual(4);
    expect(all.items.every((e) => e.event.orgId === admin.orgId)).toBe(true);
    const seqs = all.items.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));

    const paged: number[] = [];
    let cursor: string | null = null;
    do {
      const res = await get(`events?limit=2${cursor ? `&cursor=${cursor}` : ''}`, admin.accessToken);
      const page = (await res.json()) as { items: EventView[]; nextCursor: string | null };
      paged.push(...page.items.map((e) => e.seq));
      cursor = page.nextCursor;
    } while (cursor);
    expect(paged).toEqual(seqs.filter((s) => s <= paged[0]));

    const logins = (await (await get('events?action=auth.login', admin.accessToken)).json()) as { items: EventView[] };
    expect(logins.items.length).toBeGreaterThanOrEqual(4);
    expect(logins.items.every((e) => e.event.action === 'auth.login')).toBe(true);
    const mine = logins.items[logins.items.length - 1].event.actor.userId!;
    const byActor = (await (await get(`events?actor=${mine}&outcome=success`, admin.accessToken)).json()) as { items: EventView[] };
    expect(byActor.items.length).toBeGreaterThan(0);
    expect(byActor.items.every((e) => e.event.actor.userId === mine)).toBe(true);
    const future = (await (
      await get(`events?from=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`, admin.accessToken)
    ).json()) as {
      items: EventView[];
    };
    expect(future.items).toEqual([]);
  });

  it.each([['limit=1000'], ['limit=0'], ['cursor=abc'], ['outcome=maybe'], ['actor=not-a-uuid'], ['sql=1'], ['from=yesterday']])(
    'refuses a bad query (%s) with 400',
    async (qs) => {
      const res = await get(`events?${qs}`, admin.accessToken);
      expect(res.status).toBe(400);
    },
  );

  it('reads one event; another org, an unknown id and a malformed id all answer 404', async () => {
    const { items: events } = (await (await get('events?limit=1', admin.accessToken)).json()) as { items: EventView[] };
    const id = events[0].event.id;
    const own = await get(`events/${id}`, tokens.viewer);
    expect(own.status).toBe(200);
    expect(((await own.json()) as EventView).event.id).toBe(id);
    for (const [path, token] of [
      [`events/${id}`, tokens.stranger],
      [`events/${randomUUID()}`, admin.accessToken],
      ['events/1%20OR%201=1', admin.accessToken],
    ]) {
      const res = await get(path, token);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { code: string }).code).toBe('not_found');
    }
  });

  it('every route refuses a user without the capability (403), and the other org sees only its own chain', async () => {
    for (const path of ['events', `events/${randomUUID()}`, 'verify', 'checkpoints', 'export']) {
      expect((await get(path, tokens.nobody)).status).toBe(403);
    }
    for (const path of ['archive', 'checkpoints']) {
      expect((await post(path, tokens.nobody, { before: new Date().toISOString() })).status).toBe(403);
      expect((await post(path, tokens.viewer, { before: new Date().toISOString() })).status).toBe(403);
    }
    const theirs = (await (await get('events?limit=500', tokens.stranger)).json()) as { items: EventView[] };
    expect(theirs.items.every((e) => e.event.orgId !== admin.orgId)).toBe(true);
    const exported = await (await get('export', tokens.stranger)).text();
    expect(exported).not.toContain(admin.orgId);
  });

  it('verifies the chain against a signed checkpoint, and the export verifies offline', async () => {
    const signed = await post('checkpoints', admin.accessToken);
    expect(signed.status).toBe(201);
    const verify = (await (await get('verify', tokens.viewer)).json()) as {
      ok: boolean;
      headSeq: number;
      checkpoint: { valid: boolean; seq: number };
    };
    expect(verify).toMatchObject({ ok: true, checkpoint: { valid: true } });
    expect(verify.checkpoint.seq).toBeLessThanOrEqual(verify.headSeq);

    const res = await get('export', tokens.viewer);
    expect(res.headers.get('content-type')).toMatch(/application\/x-ndjson/);
    const lines = (await res.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; prevHash: string; rowHash: string; event: Record<string, unknown> });
    const v = new ChainVerifier(admin.orgId);
    for (const l of lines) v.push({ id: l.event.id as string, seq: l.seq, prevHash: l.prevHash, rowHash: l.rowHash, event: l.event });
    expect(v.finish()).toMatchObject({ ok: true });
    expect(lines.length).toBeGreaterThanOrEqual(verify.headSeq);
  });

  it('the offline CLI verifies against the exported checkpoints with a progress bar, and rejects a forged or foreign one', async () => {
    const exported = (await (await get('checkpoints', tokens.viewer)).json()) as {
      items: Array<Record<string, unknown>>;
      nextCursor: null;
      publicKeys: string[];
    };
    expect(exported.items.length).toBeGreaterThan(0);
    expect(exported.nextCursor).toBeNull();
    const dir = mkdtempSync(path.join(tmpdir(), 'audit-cli-'));
    try {
      const file = path.join(dir, 'checkpoints.json');
      const key = path.join(dir, 'key.pem');
      // `custodian audit verify --offline` in-process (cli/run.ts), as the built command runs it
      const verifyOffline = () =>
        runCustodian(['audit', 'verify', '--offline', '--database-url', db.url, '--checkpoint', file, '--public-key', key]);
      writeFileSync(file, JSON.stringify(exported));
      writeFileSync(key, exported.publicKeys[0]);
      const ok = await verifyOffline();
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, chains: [{ chainId: orgId, ok: true }] });
      expect(ok.stderr).toMatch(/\[#+\] 100% /);
      // a file saved before ADR 0018 ({publicKeys, checkpoints}) still verifies
      writeFileSync(file, JSON.stringify({ publicKeys: exported.publicKeys, checkpoints: exported.items }));
      expect((await verifyOffline()).code).toBe(0);

      const forged = { ...exported, items: exported.items.map((c) => ({ ...c, seq: (c.seq as number) - 1 })) };
      writeFileSync(file, JSON.stringify(forged));
      const rejected = await verifyOffline();
      expect(rejected.code).toBe(1);
      expect(JSON.parse(rejected.stdout).chains[0]).toMatchObject({ ok: false, problem: 'checkpoint_rejected', reason: 'bad signature' });

      const { publicKey } = generateKeyPairSync('ed25519');
      writeFileSync(file, JSON.stringify(exported));
      writeFileSync(key, publicKey.export({ type: 'spki', format: 'pem' }).toString());
      const foreign = await verifyOffline();
      expect(foreign.code).toBe(1);
      expect(JSON.parse(foreign.stdout).chains[0]).toMatchObject({ reason: 'signed by an untrusted key' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('archives once: rows move, verification and export still cover them, and the move is audited', async () => {
    expect((await post('archive', admin.accessToken, { before: 'yesterday' })).status).toBe(400);
    expect((await post('archive', admin.accessToken, { before: new Date(Date.now() + 86_400_000).toISOString() })).status).toBe(400);
    const before = (await (await get('events?limit=500', admin.accessToken)).json()) as { items: EventView[] };
    const res = await post('archive', admin.accessToken, { before: new Date().toISOString() });
    expect(res.status).toBe(200);
    const { archived } = (await res.json()) as { archived: number };
    expect(archived).toBeGreaterThanOrEqual(before.items.length);
    const again = (await (await post('archive', admin.accessToken, { before: new Date(Date.now() - 1000).toISOString() })).json()) as {
      archived: number;
    };
    expect(again.archived).toBe(0);

    const one = (await (await get(`events/${before.items[0].event.id}`, admin.accessToken)).json()) as EventView;
    expect(one.archived).toBe(true);
    await pollUntil(
      async () => {
        const r = (await (await get('events?action=audit.archived', admin.accessToken)).json()) as { items: EventView[] };
        return r.items.length > 0;
      },
      { what: 'audit.archived event' },
    );
    expect(await (await get('verify', admin.accessToken)).json()).toMatchObject({ ok: true, checkpoint: { valid: true } });
    const lines = (await (await get('export', admin.accessToken)).text()).trim().split('\n');
    expect(lines.length).toBeGreaterThan(archived);
  });

  it('F5: when the audit pipeline is behind, a change answers 503 with Retry-After, nothing changed; it recovers by itself', async () => {
    const writer = a.host.app.get(OutboxWriter, { strict: false });
    const relay = a.host.app.get(OutboxRelay, { strict: false });
    writer.setMaxBacklog(3);
    const stuck = Array.from({ length: 4 }, () => randomUUID());
    try {
      // Rows the relay cannot send (they no longer match the contract) stand in for a stalled pipeline.
      for (const id of stuck)
        await pg.query(`INSERT INTO audit.outbox (id, subject, payload) VALUES ($1, 'evt.audit.recorded', '{}')`, [id]);
      await relay.relayOnce().catch(() => undefined);
      const before = (await pg.query(`SELECT count(*)::int AS n FROM audit.outbox`)).rows[0].n;
      const res = await post('archive', admin.accessToken, { before: new Date().toISOString() });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(((await res.json()) as { code: string }).code).toBe('audit_backlog');
      expect((await pg.query(`SELECT count(*)::int AS n FROM audit.outbox`)).rows[0].n).toBe(before); // nothing written

      await pg.query(`UPDATE audit.outbox SET published_at = now() WHERE id = ANY($1::uuid[])`, [stuck]); // the pipeline catches up
      await relay.relayOnce().catch(() => undefined);
      expect((await post('archive', admin.accessToken, { before: new Date().toISOString() })).status).toBe(200);
    } finally {
      writer.setMaxBacklog(DEFAULT_MAX_BACKLOG);
    }
  });

  it('A4: a forged checkpoint makes verification fail', async () => {
    const verifier = a.host.app.get(CheckpointService);
    const latest = (await verifier.latest(admin.orgId))!;
    await pg.query(
      `INSERT INTO audit.audit_checkpoint (id, chain_id, seq, head_hash, signed_at, key_id, signature) VALUES ($1, $2, $3, $4, now(), $5, $6)`,
      [randomUUID(), admin.orgId, latest.seq + 1000, 'f'.repeat(64), latest.kid, latest.signature],
    );
    const verify = (await (await get('verify', admin.accessToken)).json()) as {
      ok: boolean;
      checkpoint: { valid: boolean; reason: string };
    };
    expect(verify).toMatchObject({ ok: false, checkpoint: { valid: false, reason: 'bad signature' } });
  });
});

describe('audit API paging past sequence 1,000', () => {
  let db: TestDatabase;
  let a: AuditHost;
  let pg: Client;
  let token: string;
  const orgId = randomUUID();
  const TOTAL = 1_234;

  beforeAll(async () => {
    db = await createTestDatabase('audit_paging', { migrated: true });
    a = await startAuditHost(db.url);
    pg = new Client({ connectionString: db.url });
    await pg.connect();
    token = await a.tokenFor({ userId: randomUUID(), orgId, capabilities: ['view_audit'] });
    const events = Array.from({ length: TOTAL }, () => auditEvent(orgId, { action: 'auth.login' }));
    const results = await a.bus.publishMany(
      AuditEventRecorded,
      events.map((e) => ({ payload: e, messageId: e.id })),
    );
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    await pollUntil(async () => (await pg.query(`SELECT count(*)::int AS n FROM audit.audit_event`)).rows[0].n === TOTAL, {
      what: 'paging events stored',
      timeoutMs: 60_000,
    });
  }, 90_000);

  afterAll(async () => {
    await pg?.end();
    await a?.stop();
    await db?.drop();
  });

  it.each([1, 7, 100, 200, 500])(
    'pages of %i concatenate to the whole chain newest first: no duplicate, no hole',
    async (size) => {
      const expected = (
        await pg.query(`SELECT seq::int AS seq FROM audit.audit_event WHERE chain_id = $1 ORDER BY seq DESC`, [orgId])
      ).rows.map((r: { seq: number }) => r.seq);
      expect(expected).toHaveLength(TOTAL);
      const seen: number[] = [];
      let cursor: string | null = null;
      do {
        const res = await fetch(`${a.host.url}/api/v1/audit/events?limit=${size}${cursor ? `&cursor=${cursor}` : ''}`, {
          headers: { authorization: `Bearer ${token}` },
        });
        expect(res.status).toBe(200);
        const page = (await res.json()) as { items: EventView[]; nextCursor: string | null };
        expect(page.items.length).toBeLessThanOrEqual(size);
        seen.push(...page.items.map((e) => e.seq));
        cursor = page.nextCursor;
      } while (cursor && seen.length <= TOTAL);
      expect(seen).toEqual(expected);
    },
    120_000,
  );

  it('a chain that grew by 1,000 events is checkpointed without a timer tick or anyone asking', async () => {
    // The harness turns the interval off: only the event count can have signed this.
    const cp = a.host.app.get(CheckpointService);
    const latest = await pollUntil(async () => ((await cp.latest(orgId))?.seq ?? 0) >= 1000 && cp.latest(orgId), {
      what: 'count checkpoint',
    });
    expect(cp.check(latest).ok).toBe(true);
  });

  it('verify signs the head it verified, so rewriting the newest row afterwards (hashes recomputed) is caught', async () => {
    const headers = { authorization: `Bearer ${token}` };
    const first = (await (await fetch(`${a.host.url}/api/v1/audit/verify`, { headers })).json()) as { ok: boolean; headSeq: number };
    expect(first).toMatchObject({ ok: true, headSeq: TOTAL });
    const cp = a.host.app.get(CheckpointService);
    expect((await cp.latest(orgId))?.seq).toBe(TOTAL);

    // A superuser rewrites the last row consistently: triggers off, new content, recomputed row and head hash.
    await pg.query(`ALTER TABLE audit.audit_event DISABLE TRIGGER ALL`);
    await pg.query(`UPDATE audit.audit_event SET event = jsonb_set(event, '{action}', '"auth.logout"') WHERE chain_id = $1 AND seq = $2`, [
      orgId,
      TOTAL,
    ]);
    const row = (await pg.query(`SELECT prev_hash, event FROM audit.audit_event WHERE chain_id = $1 AND seq = $2`, [orgId, TOTAL])).rows[0];
    const forged = eventHash(orgId, TOTAL, row.prev_hash, row.event);
    await pg.query(`UPDATE audit.audit_event SET row_hash = $3 WHERE chain_id = $1 AND seq = $2`, [orgId, TOTAL, forged]);
    await pg.query(`UPDATE audit.audit_chain_head SET head_hash = $2 WHERE chain_id = $1`, [orgId, forged]);

    const second = (await (await fetch(`${a.host.url}/api/v1/audit/verify`, { headers })).json()) as Record<string, unknown>;
    expect(second).toMatchObject({ ok: false, firstBadSeq: TOTAL, problem: 'checkpoint_mismatch' });
  });
});

describe('audit service without a master key', () => {
  it('stores and verifies, but refuses to sign checkpoints (503) instead of failing to start', async () => {
    const db = await createTestDatabase('audit_nokey', { migrated: true });
    const a = await startAuditHost(db.url, { masterKey: null });
    try {
      const orgId = randomUUID();
      const token = await a.tokenFor({ userId: randomUUID(), orgId, capabilities: ['view_audit', 'manage_audit'] });
      const e = auditEvent(orgId);
      await a.bus.publish(AuditEventRecorded, e, { messageId: e.id });
      const headers = { authorization: `Bearer ${token}` };
      await pollUntil(
        async () => ((await (await fetch(`${a.host.url}/api/v1/audit/verify`, { headers })).json()) as { headSeq: number }).headSeq === 1,
        {
          what: 'event stored',
        },
      );
      expect((await fetch(`${a.host.url}/api/v1/audit/checkpoints`, { method: 'POST', headers })).status).toBe(503);
      expect(await (await fetch(`${a.host.url}/api/v1/audit/checkpoints`, { headers })).json()).toEqual({
        items: [],
        nextCursor: null,
        publicKeys: [],
      });
    } finally {
      await a.stop();
      await db.drop();
    }
  });
});
