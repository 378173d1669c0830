import { randomBytes, randomUUID } from 'node:crypto';
import { AuditEventRecorded } from '@custodian/contracts';
import { NatsBus } from '@custodian/platform';
import { ChainVerifier } from '../../apps/audit/src/chain/chain-verifier';
import { apiClient, type Json } from '../support/api';
import { createTestDatabase } from '../support/database';
import { login, startTestHost, type TestHost } from '../support/host';
import { pollUntil } from '../support/poll';
import { auditEvent, startAuditHost } from './audit-harness';

const PASSWORD = 'a-long-enough-password';
const MARGIN_A = [4242.25, 5353.75];
const MARGIN_B = [6161.5, 7272.5];
const MARGIN_C = 8383.125;

interface EventView {
  seq: number;
  prevHash: string | null;
  rowHash: string | null;
  redacted?: boolean;
  event: { id: string; action: string; target?: { type: string; id?: string }; details?: Json };
}

/**
 * Audit reads apply the reader's record and field access: a `view_audit` holder who cannot read
 * `margin`, nor the records of someone else, sees neither through GET audit/events, events/:id or
 * export. The same reader pages correctly past the events they may not see.
 */
describe.each([
  ['in-process', {} as Record<string, string>],
  ['nats', { NATS_URL: process.env.NATS_URL ?? 'nats://127.0.0.1:4222', CUSTODIAN_BUS_NAMESPACE: `t${randomBytes(5).toString('hex')}` }],
])('audit reads respect the reader’s record and field access (%s bus)', (busName, env) => {
  let t: TestHost;
  let base: string;
  let admin: string;
  let olga: { id: string; token: string };
  let aud: { id: string; token: string };
  const rec: Record<'A' | 'B' | 'C', string> = { A: '', B: '', C: '' };
  const { call, ok } = apiClient(() => base);

  const events = async (token: string, qs: string): Promise<EventView[]> =>
    ((await ok(call('GET', `/audit/events?${qs}`, token))) as { items: EventView[] }).items;
  const exportOf = async (token: string): Promise<{ status: number; lines: Json[]; text: string; view: string | null }> => {
    const res = await fetch(`${base}/api/v1/audit/export`, { headers: { authorization: `Bearer ${token}` } });
    const text = await res.text();
    return {
      status: res.status,
      text,
      view: res.headers.get('custodian-audit-view'),
      lines: text
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Json),
    };
  };

  beforeAll(async () => {
    t = await startTestHost(`auditread_${busName.replace('-', '')}`, env);
    base = t.host.url;
    admin = (await login(base)).accessToken;
    await ok(
      call('POST', '/meta/objects', admin, {
        name: 'deal',
        label: 'Deal',
        sharingModel: 'private',
        auditReads: true,
        fields: [
          { name: 'name', type: 'text', required: true, maxLength: 120 },
          { name: 'margin', type: 'currency' },
        ],
      }),
      201,
    );
    const sales = await ok(
      call('POST', '/permission-sets', admin, {
        name: 'Sales',
        objects: { deal: { allowRead: true, allowCreate: true, allowEdit: true, allowDelete: true } },
      }),
      201,
    );
    const auditor = await ok(
      call('POST', '/permission-sets', admin, {
        name: 'Deal auditor',
        systemCapabilities: ['view_audit'],
        objects: { deal: { allowRead: true } },
        fields: { deal: { margin: 'none' } },
      }),
      201,
    );
    const user = async (name: string, setId: string): Promise<{ id: string; token: string }> => {
      const u = await ok(call('POST', '/users', admin, { email: `${name}@test.local`, displayName: name, password: PASSWORD }), 201);
      await ok(call('POST', `/permission-sets/${setId}/assignments`, admin, { userId: u.id }), 201);
      return { id: u.id, token: (await login(base, { email: `${name}@test.local`, password: PASSWORD })).accessToken };
    };
    olga = await user('olga', sales.id);
    aud = await user('aud', auditor.id);

    const a = await ok(call('POST', '/data/deal', olga.token, { name: 'Alpha shared', margin: MARGIN_A[0] }), 201);
    const b = await ok(call('POST', '/data/deal', olga.token, { name: 'Bravo secret', margin: MARGIN_B[0] }), 201);
    const c = await ok(call('POST', '/data/deal', olga.token, { name: 'Charlie gone', margin: MARGIN_C }), 201);
    rec.A = a.id;
    rec.B = b.id;
    rec.C = c.id;
    await ok(call('PATCH', `/data/deal/${rec.A}`, olga.token, { name: 'Alpha renamed', margin: MARGIN_A[1] }, { 'if-match': '"1"' }));
    await ok(call('PATCH', `/data/deal/${rec.B}`, olga.token, { margin: MARGIN_B[1] }, { 'if-match': '"1"' }));
    await ok(call('POST', `/data/deal/${rec.A}/shares`, olga.token, { granteeType: 'user', granteeId: aud.id, accessLevel: 'read' }), 201);
    await ok(call('DELETE', `/data/deal/${rec.C}`, olga.token), 204);
    await ok(call('GET', '/data/deal', olga.token)); // a list read naming A and B
    // 3 created, 2 updated, 1 shared, 1 deleted, 1 list read.
    await pollUntil(async () => (await events(admin, 'objectType=deal&limit=500')).length >= 8, { what: 'deal events stored' });
  }, 90_000);

  afterAll(async () => {
    if (t?.host.bus instanceof NatsBus) await t.host.bus.deleteStream().catch(() => undefined);
    await t?.stop();
  });

  it('the unrestricted admin sees every deal event with its values and hashes', async () => {
    const all = await events(admin, 'objectType=deal&limit=500');
    expect(all.map((e) => e.event.target?.id).filter(Boolean)).toEqual(expect.arrayContaining([rec.A, rec.B, rec.C]));
    const text = JSON.stringify(all);
    for (const v of [...MARGIN_A, ...MARGIN_B, MARGIN_C]) expect(text).toContain(String(v));
    expect(all.every((e) => typeof e.rowHash === 'string' && e.redacted === undefined)).toBe(true);
  });

  it('events of a readable record: a hidden field shows as changed but hidden, never its value; the event is marked redacted', async () => {
    const onA = await events(aud.token, `recordId=${rec.A}`);
    expect(onA.map((e) => e.event.action).sort()).toEqual(['objects.record.created', 'objects.record.updated', 'objects.share.granted']);
    const updated = onA.find((e) => e.event.action === 'objects.record.updated')!;
    expect(updated.redacted).toBe(true);
    expect(updated.event.details.changes).toEqual({ name: { from: 'Alpha shared', to: 'Alpha renamed' }, margin: { hidden: true } });
    const created = onA.find((e) => e.event.action === 'objects.record.created')!;
    expect(created.event.details.fields.name).toEqual({ from: null, to: 'Alpha shared' });
    expect(created.event.details.fields.margin).toEqual({ hidden: true });
    const text = JSON.stringify(onA);
    for (const v of MARGIN_A) expect(text).not.toContain(String(v));
  });

  it('events of records the reader cannot read (private, deleted) are not listed, and read alone answer 404', async () => {
    expect(await events(aud.token, `recordId=${rec.B}`)).toEqual([]);
    expect(await events(aud.token, `recordId=${rec.C}`)).toEqual([]);
    const all = await events(aud.token, 'objectType=deal&limit=500');
    const text = JSON.stringify(all);
    for (const hidden of [rec.B, rec.C, 'Bravo secret', 'Charlie gone', ...MARGIN_A.map(String), ...MARGIN_B.map(String), String(MARGIN_C)])
      expect(text).not.toContain(hidden);
    // The list read names the records read: only the ones this reader can read remain.
    const read = all.find((e) => e.event.action === 'objects.record.read')!;
    expect(read.event.details.ids).toEqual([rec.A]);
    expect(read.redacted).toBe(true);

    const bEvent = (await events(admin, `recordId=${rec.B}`))[0];
    const own = await call('GET', `/audit/events/${bEvent.event.id}`, aud.token);
    expect([own.status, own.body.code]).toEqual([404, 'not_found']);
    const aEvent = (await events(admin, `recordId=${rec.A}&action=objects.record.updated`))[0];
    const one = await ok(call('GET', `/audit/events/${aEvent.event.id}`, aud.token));
    expect(one.event.details.changes).toEqual({ name: { from: 'Alpha shared', to: 'Alpha renamed' }, margin: { hidden: true } });
  });

  it('a filtered reader gets no hashes (they would let a hidden value be guessed offline)', async () => {
    const all = await events(aud.token, 'limit=500');
    expect(all.length).toBeGreaterThan(0);
    expect(all.every((e) => e.prevHash === null && e.rowHash === null)).toBe(true);
  });

  it('keyset pages continue past events the reader may not see: pages concatenate to the full filtered list', async () => {
    const full = (await events(aud.token, 'objectType=deal&limit=500')).map((e) => e.seq);
    const paged: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = (await ok(call('GET', `/audit/events?objectType=deal&limit=1${cursor ? `&cursor=${cursor}` : ''}`, aud.token))) as {
        items: EventView[];
        nextCursor: string | null;
      };
      paged.push(...page.items.map((e) => e.seq));
      cursor = page.nextCursor;
      pages++;
    } while (cursor && pages < 100);
    expect(paged).toEqual(full);
    expect(pages).toBeGreaterThan(full.length); // some pages were emptied by the filter, and paging went on
  });

  it('the export applies the same filter and marks redacted lines; the unrestricted export verifies offline', async () => {
    const mine = await exportOf(aud.token);
    expect(mine.status).toBe(200);
    expect(mine.view).toBe('filtered');
    for (const hidden of [rec.B, rec.C, 'Bravo secret', 'Charlie gone', ...[...MARGIN_A, ...MARGIN_B, MARGIN_C].map(String)])
      expect(mine.text).not.toContain(hidden);
    expect(mine.lines.every((l) => l.prevHash === null && l.rowHash === null)).toBe(true);
    const updatedA = mine.lines.find((l) => l.event.action === 'objects.record.updated' && l.event.target.id === rec.A);
    expect(updatedA).toMatchObject({ redacted: true, event: { details: { changes: { name: { to: 'Alpha renamed' } } } } });

    const full = await exportOf(admin);
    expect(full.view).toBe('full');
    expect(full.lines.some((l) => l.redacted)).toBe(false);
    const orgId = full.lines[0].chainId as string;
    const v = new ChainVerifier(orgId);
    for (const l of full.lines) v.push({ id: l.event.id, seq: l.seq, prevHash: l.prevHash, rowHash: l.rowHash, event: l.event });
    expect(v.finish()).toMatchObject({ ok: true });
    expect(full.text).toContain(String(MARGIN_B[1]));
  });
});

describe('audit reads when the objects service cannot answer', () => {
  it('fail closed: events of records answer 503 with a code, never unfiltered', async () => {
    const db = await createTestDatabase('audit_closed', { migrated: true });
    const a = await startAuditHost(db.url, { visibility: 'none' });
    try {
      const orgId = randomUUID();
      const token = await a.tokenFor({ userId: randomUUID(), orgId, capabilities: ['view_audit'] });
      const e = auditEvent(orgId, {
        action: 'objects.record.updated',
        target: { type: 'deal', id: randomUUID() },
        details: { changes: { margin: { from: 1, to: 2 } } },
      });
      await a.bus.publish(AuditEventRecorded, e, { messageId: e.id });
      const headers = { authorization: `Bearer ${token}` };
      await pollUntil(
        async () => ((await (await fetch(`${a.host.url}/api/v1/audit/verify`, { headers })).json()) as { headSeq: number }).headSeq === 1,
        { what: 'event stored' },
      );
      for (const path of ['events', `events/${e.id}`, 'export']) {
        const res = await fetch(`${a.host.url}/api/v1/audit/${path}`, { headers });
        expect(res.status).toBe(503);
        expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
        const body = (await res.json()) as { code: string };
        expect(body.code).toBe('service_unavailable');
        expect(JSON.stringify(body)).not.toContain('margin');
      }
    } finally {
      await a.stop();
      await db.drop();
    }
  });
});
