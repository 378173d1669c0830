import { randomUUID } from 'node:crypto';
import { ApplyRecordOperations, type RequestOf } from '@custodian/contracts';
import type { Client } from 'pg';
import { apiClient, type Json } from '../../../../test/support/api';
import { createMember, startTestHostWithDb, type TestHost } from '../../../../test/support/host';

const PASSWORD = 'a-long-enough-password';
const AGENT = { clientId: 'sales-copilot', name: 'Sales copilot', scopes: ['data:read', 'data:write'] };

type Item = RequestOf<typeof ApplyRecordOperations>['items'][number];

/**
 * objects.record.apply-many's batched update path (batch-update.ts): one requester's updates of one
 * object in a fixed number of statements, each item still answering as RecordWriteService.update would
 * — applied, stale (P2), not_found (not readable), forbidden (readable, not editable; a field below
 * edit), invalid (a bad value), a second item on the same record (stale after the first) — with one
 * audit event and one receipt per applied item, as the requester's agent, and a retry answering the
 * receipts without writing again (P3).
 */
describe('objects: batched apply of approved updates', () => {
  let t: TestHost;
  let db: Client;
  const { call, ok } = apiClient(() => t.host.url);
  const tokens: Record<string, string> = {};
  const users: Record<string, string> = {};
  let orgId: string;

  const createDeal = async (token: string, title: string): Promise<Json> =>
    ok(call('POST', '/data/deal', token, { title, amount: 100 }), 201);
  const events = async (recordId: string): Promise<Json[]> =>
    (
      await db.query(
        `SELECT payload FROM objects.outbox WHERE payload->>'action' = 'objects.record.updated' AND payload->'target'->>'id' = $1 ORDER BY id`,
        [recordId],
      )
    ).rows.map((r: { payload: Json }) => r.payload);

  beforeAll(async () => {
    ({
      t,
      pg: db,
      admin: tokens.admin,
      orgId,
    } = await startTestHostWithDb('approvals_batch_update', {
      CUSTODIAN_APPROVALS_SWEEP_MS: '0',
      LOG_LEVEL: 'error',
    }));
    await ok(
      call('POST', '/meta/objects', tokens.admin, {
        name: 'deal',
        label: 'Deal',
        fields: [
          { name: 'title', type: 'text' },
          { name: 'amount', type: 'number' },
          { name: 'margin', type: 'number', sensitive: true },
        ],
      }),
      201,
    );
    // Every deal readable, only one's own editable; margin readable, never editable.
    const set = await ok(
      call('POST', '/permission-sets', tokens.admin, {
        name: 'Reps',
        objects: { deal: { allowRead: true, allowCreate: true, allowEdit: true, viewAllRecords: true } },
        fields: { deal: { '*': 'edit', margin: 'read' } },
        integrationCapabilities: ['api_access', 'agent_access'],
      }),
      201,
    );
    for (const name of ['rep', 'other'])
      ({ userId: users[name], accessToken: tokens[name] } = await createMember(t.host.url, tokens.admin, name, [set.id], PASSWORD));
  }, 90_000);

  afterAll(async () => {
    await db?.end();
    await t?.stop();
  });

  it('a batch mixing applied, stale, not found, forbidden and invalid items answers each, in request order, with one event and receipt per write', async () => {
    const [a, b, c, d, e] = await Promise.all(['A', 'B', 'C', 'D', 'E'].map((n) => createDeal(tokens.rep, n)));
    const foreign = await createDeal(tokens.other, 'F');
    const item = (recordId: string, values: Json, expectedVersion = 1): Item => ({
      requester: { userId: users.rep, orgId, agent: AGENT },
      operation: 'update',
      object: 'deal',
      recordId,
      values,
      expectedVersion,
      idempotencyKey: `pending-action:${randomUUID()}`,
    });
    const items = [
      item(a.id, { amount: 111 }),
      item(b.id, { amount: 222 }, 7), // P2: not the version the reviewers saw
      item(randomUUID(), { amount: 333 }), // no such record
      item(foreign.id, { amount: 444 }), // readable, not editable (another rep's)
      item(c.id, { margin: 0.5 }), // a field below edit
      item(d.id, { amount: 'many' }), // not a number
      item(e.id, { title: 'E2', amount: 555 }), // another set of fields: its own UPDATE
      item(a.id, { amount: 666 }), // the same record again: stale after the first
    ];
    const { results } = await t.host.bus.request(ApplyRecordOperations, { items });
    expect(results.map((r) => [r.outcome, r.version ?? null])).toEqual([
      ['applied', 2],
      ['stale', null],
      ['not_found', null],
      ['forbidden', null],
      ['forbidden', null],
      ['invalid', null],
      ['applied', 2],
      ['stale', null],
    ]);
    expect(results[0].diff).toEqual({ amount: { from: 100, to: 111 } });
    expect(results[6].diff).toEqual({ title: { from: 'E', to: 'E2' }, amount: { from: 100, to: 555 } });

    const read = async (id: string) => ok(call('GET', `/data/deal/${id}`, tokens.rep));
    expect(await read(a.id)).toMatchObject({ amount: 111, version: 2 });
    expect(await read(e.id)).toMatchObject({ title: 'E2', amount: 555, version: 2 });
    for (const unchanged of [b, c, d, foreign]) expect(await read(unchanged.id)).toMatchObject({ amount: 100, version: 1 });

    // One audit event per applied item, as the requester's agent, with the field diff; none for the others.
    const [eventA] = await events(a.id);
    expect(await events(a.id)).toHaveLength(1);
    expect(eventA).toMatchObject({
      actor: { userId: users.rep, agent: { clientId: AGENT.clientId } },
      details: { changes: { amount: { from: 100, to: 111 } }, version: 2 },
    });
    expect(await events(e.id)).toHaveLength(1);
    for (const none of [b, c, d, foreign]) expect(await events(none.id)).toEqual([]);
    const receipts = await db.query(`SELECT key, status, response FROM objects.idempotency_key WHERE key = ANY($1::text[]) ORDER BY key`, [
      items.map((i) => i.idempotencyKey),
    ]);
    expect(receipts.rows.map((r: Json) => r.response.id).sort()).toEqual([a.id, e.id].sort());

    // P3: the same items again answer the receipts (applied, the first version) and write nothing.
    const again = await t.host.bus.request(ApplyRecordOperations, { items: [items[0], items[6]] });
    expect(again.results.map((r) => [r.outcome, r.version])).toEqual([
      ['applied', 2],
      ['applied', 2],
    ]);
    expect(await events(a.id)).toHaveLength(1);
    expect(await read(a.id)).toMatchObject({ amount: 111, version: 2 });
  });
});
