import { randomBytes } from 'node:crypto';
import {
  DescribeObjects,
  GetPrincipalSnapshot,
  GovernedGet,
  GovernedQuery,
  ListGovernedActions,
  ERROR_HTTP_STATUS,
  type PrincipalSnapshot,
  type ResponseOf,
} from '@custodian/contracts';
import { CustodianException, NatsBus } from '@custodian/platform';
import { isPolicyError } from '@custodian/policy';
import { Client } from 'pg';
import { apiClient, type Json } from '../support/api';
import { login, startTestHost, type TestHost } from '../support/host';

const PASSWORD = 'a-long-enough-password';
const AGENT = { clientId: 'test-agent', name: 'Test agent', scopes: ['data:read'] };

/** The user id of an access token (its `sub`), to ask identity for that user's snapshot. */
function subjectOf(token: string): string {
  return (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as { sub: string }).sub;
}

/**
 * Governed reads over the bus for the agent gateway (DescribeObjects, GovernedQuery, GovernedGet,
 * ListGovernedActions), on the in-process bus and on NATS: a rep who may not read a sensitive field
 * nor a whole object, and the rep's agent delegated data:read only, get exactly what the REST API
 * answers the same principal; refusals arrive at the caller with their codes and statuses.
 */
describe.each([
  ['in-process', {} as Record<string, string>],
  ['nats', { NATS_URL: process.env.NATS_URL ?? 'nats://127.0.0.1:4222', CUSTODIAN_BUS_NAMESPACE: `t${randomBytes(5).toString('hex')}` }],
])('governed reads over the %s bus', (name, env) => {
  let t: TestHost;
  let base: string;
  let pg: Client;
  let admin: string;
  let orgId: string;
  let repToken: string;
  let agentToken: string;
  let rep: PrincipalSnapshot;
  let agent: PrincipalSnapshot;
  let outsider: PrincipalSnapshot;
  let adminDealId: string;
  let vaultId: string;
  let ledgerId: string;
  const repDeals: string[] = [];

  const { call, ok } = apiClient(() => base);
  const bus = (): TestHost['host']['bus'] => t.host.bus;
  /** The refusal a bus call ends with: its code and HTTP status as the caller's transport sees them. */
  const refusal = async (p: Promise<unknown>): Promise<[string, number]> => {
    const error: unknown = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (isPolicyError(error)) return [error.code, error.status];
    if (error instanceof CustodianException) return [error.code, ERROR_HTTP_STATUS[error.code]];
    return ['no error', 0];
  };

  beforeAll(async () => {
    t = await startTestHost(`govread_${name.replace('-', '')}`, env);
    base = t.host.url;
    pg = new Client({ connectionString: t.db.url });
    await pg.connect();
    const session = await login(base);
    admin = session.accessToken;
    orgId = session.orgId;
    const set = await ok(
      call('POST', '/permission-sets', admin, {
        name: 'Deals',
        objects: {
          deal: { allowRead: true, allowCreate: true, allowEdit: true, allowDelete: true },
          ledger: { allowRead: true },
        },
        integrationCapabilities: ['agent_access'],
      }),
      201,
    );
    const u = await ok(call('POST', '/users', admin, { email: 'rep@test.local', displayName: 'Rep', password: PASSWORD }), 201);
    await ok(call('POST', `/permission-sets/${set.id}/assignments`, admin, { userId: u.id }), 201);
    const objects = [
      {
        name: 'deal',
        label: 'Deal',
        fields: [
          { name: 'title', label: 'Title', type: 'text', required: true, maxLength: 120 },
          { name: 'stage', type: 'select', options: ['open', 'won', 'lost'] },
          { name: 'amount', type: 'number' },
          { name: 'cost', type: 'number', sensitive: true },
          { name: 'account', type: 'lookup', reference: 'vault' },
          { name: 'book', type: 'lookup', reference: 'ledger' },
        ],
      },
      { name: 'vault', label: 'Vault', fields: [{ name: 'secret', type: 'text' }] },
      { name: 'ledger', label: 'Ledger', sharingModel: 'public_read', auditReads: true, fields: [{ name: 'entry', type: 'text' }] },
    ];
    // vault and ledger first: deal's lookups refer to them.
    for (const o of [objects[1], objects[2], objects[0]]) await ok(call('POST', '/meta/objects', admin, o), 201);
    await ok(
      call('POST', '/bundles/apply', admin, {
        bundle: {
          apiVersion: 'custodian.dev/v1',
          kind: 'Bundle',
          name: 'deal-actions',
          actions: [{ name: 'close_won', object: 'deal', label: 'Win it', kind: 'update', set: { stage: 'won', cost: 0 } }],
        },
      }),
    );
    const everything = await ok(
      call('POST', '/permission-sets', admin, {
        name: 'Everything',
        objects: Object.fromEntries(
          ['deal', 'vault', 'ledger'].map((o) => [o, { allowRead: true, allowCreate: true, modifyAllRecords: true }]),
        ),
        fields: { deal: { cost: 'edit' } },
      }),
      201,
    );
    await ok(call('POST', `/permission-sets/${everything.id}/assignments`, admin, { userId: subjectOf(admin) }), 201);
    admin = (await login(base)).accessToken;
    repToken = (await login(base, { email: 'rep@test.local', password: PASSWORD })).accessToken;
    ledgerId = (await ok(call('POST', '/data/ledger', admin, { entry: 'one' }), 201)).id;
    for (let i = 0; i < 5; i++) {
      const values = { title: `deal ${i}`, stage: 'open', amount: i * 10, ...(i % 2 === 0 ? { book: ledgerId } : {}) };
      repDeals.push((await ok(call('POST', '/data/deal', repToken, values), 201)).id);
    }
    adminDealId = (await ok(call('POST', '/data/deal', admin, { title: 'admin only', amount: 99, cost: 7 }), 201)).id;
    vaultId = (await ok(call('POST', '/data/vault', admin, { secret: 's3cret' }), 201)).id;
    const exchanged = await fetch(`${base}/api/v1/auth/token-exchange`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: repToken,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        scope: 'data:read',
        client_id: AGENT.clientId,
        agent_name: AGENT.name,
      }),
    });
    expect(exchanged.status).toBe(200);
    agentToken = ((await exchanged.json()) as { access_token: string }).access_token;
    rep = await bus().request(GetPrincipalSnapshot, { userId: u.id, orgId });
    agent = await bus().request(GetPrincipalSnapshot, { userId: u.id, orgId, delegation: AGENT });
    expect(agent.agent?.scopes).toEqual(['data:read']);
    const org2 = await ok(call('POST', '/orgs', admin, { name: 'Globex' }), 201);
    outsider = await bus().request(GetPrincipalSnapshot, { userId: subjectOf(admin), orgId: org2.id });
    expect(outsider.orgId).not.toBe(orgId);
  }, 90_000);

  afterAll(async () => {
    if (t?.host.bus instanceof NatsBus) await t.host.bus.deleteStream().catch(() => undefined);
    await pg?.end();
    await t?.stop();
  });

  describe('DescribeObjects', () => {
    it('shows the rep only the objects it may read, without the sensitive field, with its types and rights', async () => {
      const { objects, policyVersion } = await bus().request(DescribeObjects, { principal: rep });
      expect(policyVersion).toBe(rep.policyVersion);
      expect(objects.map((o) => o.name)).toEqual(['deal', 'ledger']);
      const deal = objects[0];
      expect(deal.can).toEqual({ read: true, create: true, edit: true, delete: true });
      expect(deal.fields.map((f) => f.name)).toEqual(['title', 'stage', 'amount', 'account', 'book']);
      expect(deal.fields[0]).toEqual({
        name: 'title',
        label: 'Title',
        type: 'text',
        required: true,
        editable: true,
        sensitive: false,
        maxLength: 120,
      });
      expect(deal.fields[1]).toMatchObject({ type: 'select', enum: ['open', 'won', 'lost'], editable: true });
      expect(deal.fields[3]).toMatchObject({ type: 'lookup', reference: 'vault' });
      expect(objects[1].can).toEqual({ read: true, create: false, edit: false, delete: false });
      expect(objects[1].fields[0]).toMatchObject({ name: 'entry', editable: false, maxLength: 255 });
      // the same objects and fields REST shows this principal
      const rest = await ok(call('GET', '/meta/objects', repToken));
      expect(rest.items.map((o: Json) => [o.name, o.fields.map((f: Json) => f.name)])).toEqual(
        objects.map((o) => [o.name, o.fields.map((f) => f.name)]),
      );
    });

    it('narrows the agent to data:read: nothing editable, no create/edit/delete', async () => {
      const { objects } = await bus().request(DescribeObjects, { principal: agent, object: 'deal' });
      expect(objects).toHaveLength(1);
      expect(objects[0].can).toEqual({ read: true, create: false, edit: false, delete: false });
      expect(objects[0].fields.every((f) => !f.editable)).toBe(true);
      expect(objects[0].fields.map((f) => f.name)).not.toContain('cost');
    });

    it('an object that does not exist for the principal is object_not_found, exactly as REST', async () => {
      for (const object of ['vault', 'nothing']) {
        expect(await refusal(bus().request(DescribeObjects, { principal: rep, object }))).toEqual(['object_not_found', 404]);
        const rest = await call('GET', `/meta/objects/${object}`, repToken);
        expect([rest.body.code, rest.status]).toEqual(['object_not_found', 404]);
      }
      // an agent allowlist (sent with the snapshot) narrows what exists for it
      const listed = await bus().request(DescribeObjects, { principal: { ...agent, agent: { ...agent.agent!, objects: ['ledger'] } } });
      expect(listed.objects.map((o) => o.name)).toEqual(['ledger']);
    });
  });

  describe('GovernedQuery', () => {
    /**
     * The bus answer keeps the tools' shape (`{records, limit, nextCursor?}`, a separate contract);
     * REST answers the same rows in the one list envelope (ADR 0018). Aggregations are `{groups}` on both.
     */
    const asRest = (answer: ResponseOf<typeof GovernedQuery>): unknown =>
      answer.records === undefined ? answer : { items: answer.records, nextCursor: answer.nextCursor ?? null };
    const queries: Array<Record<string, unknown>> = [
      { object: 'deal' },
      { object: 'deal', fields: ['title', 'amount'], orderBy: [{ field: 'amount', order: 'desc' }], limit: 3 },
      { object: 'deal', where: { amount: { $gte: 20 } }, orderBy: [{ field: 'title', order: 'asc' }] },
      { object: 'deal', limit: 2, offset: 1, orderBy: [{ field: 'amount', order: 'asc' }] },
      { object: 'deal', aggregations: [{ function: 'count', alias: 'n' }], groupBy: ['stage'] },
      { object: 'deal', expand: ['book'], fields: ['title', 'book'] },
      { object: 'ledger' },
    ];

    it.each([
      ['rep', () => [rep, repToken] as const],
      ['agent', () => [agent, agentToken] as const],
    ])('answers the %s exactly what REST POST /query answers, for several queries', async (_who, who) => {
      const [principal, token] = who();
      for (const query of queries) {
        const rest = await call('POST', '/query', token, query);
        expect([JSON.stringify(query), rest.status]).toEqual([JSON.stringify(query), 200]);
        const overBus = await bus().request(GovernedQuery, { principal, query });
        expect(asRest(overBus)).toEqual(rest.body);
      }
      const all = await bus().request(GovernedQuery, { principal, query: { object: 'deal' } });
      expect(all.records!.map((r) => r.id).sort()).toEqual([...repDeals].sort()); // never the admin's private deal
      expect(all.records!.every((r) => !('cost' in r))).toBe(true);
    });

    it('paginates with cursors, like REST', async () => {
      const seen: string[] = [];
      let cursor: string | null | undefined;
      let pages = 0;
      do {
        const query = { object: 'deal', limit: 2, orderBy: [{ field: 'amount', order: 'asc' }], ...(cursor ? { cursor } : {}) };
        const page = await bus().request(GovernedQuery, { principal: agent, query });
        expect(asRest(page)).toEqual(await ok(call('POST', '/query', agentToken, query)));
        seen.push(...page.records!.map((r) => r.id as string));
        cursor = page.nextCursor;
        pages++;
      } while (cursor);
      expect(pages).toBe(3);
      expect(seen).toEqual(repDeals);
    });

    it('refuses the hidden field with field_not_readable (and audits the refusal), bad input with its code', async () => {
      const before = await deniedCount();
      for (const query of [
        { object: 'deal', where: { cost: { $gt: 1 } } },
        { object: 'deal', fields: ['title', 'cost'] },
        { object: 'deal', orderBy: [{ field: 'cost', order: 'asc' }] },
        { object: 'deal', aggregations: [{ function: 'sum', field: 'cost', alias: 's' }] },
        // a lookup into an object the principal cannot read is refused, never answered empty
        { object: 'deal', expand: ['account'] },
      ]) {
        expect(await refusal(bus().request(GovernedQuery, { principal: agent, query }))).toEqual(['field_not_readable', 403]);
        const rest = await call('POST', '/query', agentToken, query);
        expect([rest.body.code, rest.status]).toEqual(['field_not_readable', 403]);
      }
      expect(await deniedCount()).toBeGreaterThan(before);
      // visible but not readable, and unknown: what REST answers
      for (const object of ['vault', 'nothing']) {
        const rest = await call('POST', '/query', repToken, { object });
        expect(await refusal(bus().request(GovernedQuery, { principal: rep, query: { object } }))).toEqual([rest.body.code, rest.status]);
      }
      expect(
        await refusal(bus().request(GovernedQuery, { principal: rep, query: { object: 'deal', where: { amount: { $nope: 1 } } } })),
      ).toEqual(['unknown_operator', 400]);
      const invalid = await bus()
        .request(GovernedQuery, { principal: rep, query: { object: 'deal', limit: 'many' } })
        .catch((e: unknown) => e as { code?: string });
      expect(invalid).toMatchObject({ code: 'validation_failed' });
    });
  });

  describe('GovernedGet', () => {
    it('answers a visible record as REST does, and an invisible one not_found', async () => {
      const record = (await bus().request(GovernedGet, { principal: agent, object: 'deal', id: repDeals[0] })).record;
      expect(record).toEqual(await ok(call('GET', `/data/deal/${repDeals[0]}`, agentToken)));
      expect(record).not.toHaveProperty('cost');
      // a record of another owner and a record of an object it may not read: the 404s REST answers
      for (const [object, id] of [
        ['deal', adminDealId],
        ['vault', vaultId],
      ]) {
        const rest = await call('GET', `/data/${object}/${id}`, agentToken);
        expect([rest.body.code, rest.status]).toEqual(['not_found', 404]);
        expect(await refusal(bus().request(GovernedGet, { principal: agent, object, id }))).toEqual(['not_found', 404]);
      }
      // an object that does not exist
      expect(await refusal(bus().request(GovernedGet, { principal: agent, object: 'nothing', id: vaultId }))).toEqual([
        'object_not_found',
        404,
      ]);
    });

    it('a read of an object with auditReads is audited as the principal and its agent', async () => {
      await bus().request(GovernedGet, { principal: agent, object: 'ledger', id: ledgerId });
      const rows = await pg.query(
        `SELECT payload FROM objects.outbox WHERE payload->>'action' = 'objects.record.read' AND payload->'target'->>'id' = $1`,
        [ledgerId],
      );
      expect(rows.rows.map((r) => [r.payload.actor.userId, r.payload.actor.agent?.clientId])).toContainEqual([
        agent.userId,
        AGENT.clientId,
      ]);
    });
  });

  describe('ListGovernedActions', () => {
    it('lists the actions of readable objects without values of unreadable fields', async () => {
      const { actions } = await bus().request(ListGovernedActions, { principal: agent });
      expect(actions).toEqual([
        { name: 'close_won', object: 'deal', label: 'Win it', kind: 'update', set: { stage: 'won' }, requiresApproval: false },
      ]);
      const rest = await ok(call('GET', '/meta/objects/deal/actions', agentToken));
      expect(rest.items.map((a: Json) => a.set)).toEqual([{ stage: 'won' }]);
      expect(rest.nextCursor).toBeNull();
      expect((await bus().request(ListGovernedActions, { principal: rep, object: 'deal' })).actions).toEqual(actions);
      expect(await refusal(bus().request(ListGovernedActions, { principal: rep, object: 'vault' }))).toEqual(['object_not_found', 404]);
    });
  });

  it('a principal of another org sees nothing of this org', async () => {
    expect((await bus().request(DescribeObjects, { principal: outsider })).objects).toEqual([]);
    expect((await bus().request(ListGovernedActions, { principal: outsider })).actions).toEqual([]);
    expect(await refusal(bus().request(DescribeObjects, { principal: outsider, object: 'deal' }))).toEqual(['object_not_found', 404]);
    expect(await refusal(bus().request(GovernedQuery, { principal: outsider, query: { object: 'deal' } }))).toEqual([
      'object_not_found',
      404,
    ]);
    expect(await refusal(bus().request(GovernedGet, { principal: outsider, object: 'deal', id: repDeals[0] }))).toEqual([
      'object_not_found',
      404,
    ]);
  });

  async function deniedCount(): Promise<number> {
    const r = await pg.query(
      `SELECT count(*)::int AS n FROM objects.outbox WHERE payload->>'action' = 'authz.denied' AND payload->'details'->>'route' LIKE 'bus %'`,
    );
    return r.rows[0].n;
  }
});
