import { randomBytes } from 'node:crypto';
import { connect } from 'nats';
import { Client } from 'pg';
import { apiClient, typedClient, type Json } from '../support/api';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { pollUntil } from '../support/poll';
import { startProcess, type ServiceProcess } from '../support/process';

const ADMIN = { email: 'ops@approvals-dist.test', password: 'distributed-approvals-password' };
const PASSWORD = 'a-long-enough-password';
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

/**
 * The approvals flow across four OS processes — identity, objects, approvals and audit, built
 * (`dist/apps/<service>/main.js`) — that share only one PostgreSQL database (a schema each) and
 * NATS under a subject namespace of their own: an agent's proposal waits, a second human approves
 * the revision they saw, objects applies it once as the requester re-checked, and the audit store
 * (fed through JetStream) holds requested / approved / applied and the record's update with the
 * user and the agent. And P1 across processes: a requester who lost the permission before the
 * approval gets `forbidden`, and nothing is written.
 */
describe('approvals across separate processes over NATS', () => {
  let db: TestDatabase;
  let pg: Client;
  const namespace = `e2eappr${randomBytes(4).toString('hex')}`;
  const masterKey = randomBytes(32).toString('base64');
  const procs: Record<string, ServiceProcess> = {};
  const urls: Record<string, string> = {};
  /** The typed client at one service as one caller (the generated client against the real processes). */
  const as = (service: string, who: string) => typedClient(urls[service], tokens[who]);
  // Raw HTTP only where the test reads a header the typed client does not show.
  const approvalsRaw = apiClient(() => urls.approvals);
  const tokens: Record<string, string> = {};
  const users: Record<string, string> = {};
  let repSet: string;
  let repAssignment: string;

  const env = (): Record<string, string> => ({
    DATABASE_URL: db.url,
    NATS_URL,
    CUSTODIAN_BUS_NAMESPACE: namespace,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    CUSTODIAN_MASTER_KEY: masterKey,
    CUSTODIAN_ADMIN_EMAIL: ADMIN.email,
    CUSTODIAN_ADMIN_PASSWORD: ADMIN.password,
    CUSTODIAN_SHUTDOWN_GRACE_MS: '3000',
  });
  const login = async (email: string, password: string): Promise<string> =>
    (await typedClient(urls.identity).authLogin({ body: { email, password } })).accessToken;
  /** Audit events in the audit store (audit process), by target. */
  const stored = async (targetId: string): Promise<Array<{ action: string; actor_user_id: string | null; event: Json }>> =>
    (
      await pg.query(`SELECT action, actor_user_id, event FROM audit.audit_event WHERE target_id = $1 ORDER BY occurred_at, seq`, [
        targetId,
      ])
    ).rows;

  beforeAll(async () => {
    db = await createTestDatabase('e2e_appr_dist', { migrated: true });
    pg = new Client({ connectionString: db.url });
    await pg.connect();
    // Identity first: it bootstraps the organization and the administrator the others rely on.
    procs.identity = startProcess('dist/apps/identity/main.js', env());
    urls.identity = `http://127.0.0.1:${await procs.identity.port()}`;
    for (const service of ['objects', 'approvals', 'audit']) procs[service] = startProcess(`dist/apps/${service}/main.js`, env());
    for (const service of ['objects', 'approvals', 'audit']) urls[service] = `http://127.0.0.1:${await procs[service].port()}`;

    tokens.admin = await login(ADMIN.email, ADMIN.password);
    await as('objects', 'admin').objectMetadataCreate({
      body: {
        name: 'deal',
        label: 'Deal',
        fields: [
          { name: 'title', type: 'text' },
          { name: 'amount', type: 'number' },
        ],
      },
    });
    const identityAdmin = as('identity', 'admin');
    const rep = await identityAdmin.permissionSetsCreate({
      body: {
        name: 'Reps',
        objects: { deal: { allowRead: true, allowCreate: true, allowEdit: true } },
        fields: { deal: { '*': 'edit' } },
        // The rep may approve too: separation of duties, not a missing capability, must stop her.
        systemCapabilities: ['approve_actions'],
        integrationCapabilities: ['api_access', 'agent_access'],
      },
    });
    repSet = rep.id;
    const vp = await identityAdmin.permissionSetsCreate({
      body: {
        name: 'VP',
        objects: { deal: { viewAllRecords: true } },
        fields: { deal: { '*': 'read' } },
        systemCapabilities: ['approve_actions'],
      },
    });
    for (const [name, set] of [
      ['rep', rep.id],
      ['vp', vp.id],
    ] as const) {
      const u = await identityAdmin.usersCreate({ body: { email: `${name}@dist.test`, displayName: name, password: PASSWORD } });
      expect(identityAdmin.lastStatus).toBe(201);
      users[name] = u.id;
      const a = await identityAdmin.permissionSetsAssign({ id: set, body: { userId: users[name] } });
      if (name === 'rep') repAssignment = a.id;
      tokens[name] = await login(`${name}@dist.test`, PASSWORD);
    }
    // The rep hands work to an agent: a delegated token (RFC 8693), never more than her own access.
    tokens.agent = (
      await typedClient(urls.identity).authTokenExchange({
        body: {
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: tokens.rep,
          subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
          scope: 'data:read data:write',
          client_id: 'sales-copilot',
          agent_name: 'Sales copilot',
        },
      })
    ).access_token;
  }, 120_000);

  afterAll(async () => {
    await Promise.all(Object.values(procs).map((p) => p.stop('SIGKILL')));
    const nc = await connect({ servers: NATS_URL });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(`${namespace.toUpperCase()}_EVENTS`).catch(() => undefined);
    await nc.close();
    await pg?.end();
    await db?.drop();
  });

  const createDeal = async (title: string): Promise<{ id: string }> => {
    const objects = as('objects', 'rep');
    const created = await objects.recordsCreate({ object: 'deal', body: { title, amount: 100 } });
    expect(objects.lastStatus).toBe(201); // written, not queued for approval (202)
    return created as { id: string };
  };
  const propose = (recordId: string, amount: number, client = as('approvals', 'agent')) =>
    client.pendingActionsFile({
      body: {
        kind: 'record.update',
        object: 'deal',
        recordId,
        values: { amount },
        justification: 'Customer asked for three more seats',
      },
    });
  const approve = (who: string, id: string, revision: string) =>
    as('approvals', who).pendingActionsApprove({ id, body: {}, headers: { 'if-match': revision } });

  it("an agent's update waits; a second human approves the revision they saw; objects applies it once; the audit store has it all", async () => {
    const deal = await createDeal('Acme');
    // Agents never write directly: objects refuses, and the proposal goes to approvals.
    await expect(
      as('objects', 'agent').recordsUpdate({ object: 'deal', id: deal.id, body: { amount: 150 }, headers: { 'if-match': '"1"' } }),
    ).rejects.toMatchObject({ status: 403 });
    const agentApprovals = as('approvals', 'agent');
    const filed = await propose(deal.id, 150, agentApprovals);
    expect(agentApprovals.lastStatus).toBe(201);
    expect(filed).toMatchObject({ state: 'pending', revision: 1, diff: { amount: { from: 100, to: 150 } } });
    const id = filed.id;
    expect((await as('objects', 'rep').recordsGet({ object: 'deal', id: deal.id })).amount).toBe(100);

    const inbox = await as('approvals', 'vp').pendingActionsList({ query: { waitingForMe: 'true' } });
    expect(inbox.items.map((i) => i.id)).toContain(id);
    const review = await as('approvals', 'vp').pendingActionsGet({ id });
    expect(review.requester).toEqual({ userId: users.rep, agent: { clientId: 'sales-copilot', name: 'Sales copilot' } });
    // The revision to approve is the ETag of what the VP saw (a header: raw HTTP).
    expect((await approvalsRaw.call('GET', `/approvals/${id}`, tokens.vp)).headers.get('etag')).toBe('"1"');
    // Nobody approves their own change, also not the rep for her agent's.
    await expect(approve('rep', id, '"1"')).rejects.toMatchObject({ status: 403 });
    // A revision the VP did not see is refused.
    await expect(approve('vp', id, '"2"')).rejects.toMatchObject({ status: 412 });

    const approved = await approve('vp', id, '"1"');
    expect(approved).toMatchObject({ id, state: 'applied', outcome: { version: 2 } });
    const record = await as('objects', 'rep').recordsGet({ object: 'deal', id: deal.id });
    expect(record).toMatchObject({ amount: 150, version: 2 });
    // Approving again changes nothing.
    await expect(approve('vp', id, '"1"')).rejects.toMatchObject({ status: 409 });

    // Outbox → JetStream → audit process: the action's events and the record's update, with the user and the agent.
    const events = await pollUntil(
      async () => {
        const rows = await stored(id);
        return rows.some((r) => r.action === 'approvals.action.applied') ? rows : undefined;
      },
      { what: 'the applied event in the audit store', timeoutMs: 20_000 },
    );
    const byAction = (action: string) => events.filter((e) => e.action === action);
    expect(byAction('approvals.action.requested')).toHaveLength(1);
    expect(byAction('approvals.action.requested')[0].actor_user_id).toBe(users.rep);
    expect(byAction('approvals.action.requested')[0].event.actor.agent).toEqual({ clientId: 'sales-copilot', name: 'Sales copilot' });
    expect(byAction('approvals.action.approved')).toHaveLength(1);
    expect(byAction('approvals.action.approved')[0]).toMatchObject({ actor_user_id: users.vp, event: { details: { final: true } } });
    expect(byAction('approvals.action.applied')).toHaveLength(1);
    expect(byAction('authz.denied').map((e) => e.event.details.reason)).toEqual(['self_approval']);
    const updates = await pollUntil(
      async () => {
        const rows = (await stored(deal.id)).filter((r) => r.action === 'objects.record.updated');
        return rows.length > 0 ? rows : undefined;
      },
      { what: 'the record update in the audit store', timeoutMs: 20_000 },
    );
    // Written once, as the rep's agent, with exactly the approved change.
    expect(updates).toHaveLength(1);
    expect(updates[0].actor_user_id).toBe(users.rep);
    expect(updates[0].event.actor.agent).toMatchObject({ clientId: 'sales-copilot', name: 'Sales copilot' });
    expect(updates[0].event.details.changes).toEqual({ amount: { from: 100, to: 150 } });
  });

  it('P1: the requester lost the permission before the approval → forbidden, nothing written', async () => {
    const deal = await createDeal('Globex');
    const filed = await propose(deal.id, 999);
    await as('identity', 'admin').permissionSetsUnassign({ id: repSet, assignmentId: repAssignment });
    const res = await approve('vp', filed.id, '"1"');
    expect(res).toMatchObject({ id: filed.id, state: 'forbidden' });
    const record = await as('objects', 'vp').recordsGet({ object: 'deal', id: deal.id });
    expect(record).toMatchObject({ amount: 100, version: 1 });
    const events = await pollUntil(
      async () => {
        const rows = await stored(filed.id);
        return rows.some((r) => r.action === 'approvals.action.failed') ? rows : undefined;
      },
      { what: 'the failed event in the audit store', timeoutMs: 20_000 },
    );
    expect(events.find((e) => e.action === 'approvals.action.failed')?.event).toMatchObject({
      outcome: 'denied',
      details: { from: 'approved', to: 'forbidden', reason: 'forbidden' },
    });
    expect(events.some((e) => e.action === 'approvals.action.applied')).toBe(false);
    const objectsOutbox = await pg.query(
      `SELECT count(*)::int AS n FROM objects.outbox WHERE payload->>'action' = 'objects.record.updated' AND payload->'target'->>'id' = $1`,
      [deal.id],
    );
    expect(objectsOutbox.rows[0].n).toBe(0);
  });
});
