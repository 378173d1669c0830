import type { Client } from 'pg';
import type { ApiResponse, Json } from '../support/api';
import { login } from '../support/host';

export const PASSWORD = 'a-long-enough-password';

type Call = (
  method: string,
  path: string,
  token: string | undefined,
  body?: unknown,
  headers?: Record<string, string>,
) => Promise<ApiResponse>;
type Ok = (response: Promise<ApiResponse>, status?: number) => Promise<Json>;

/**
 * The people around one `deal` object for the approvals suites: a rep who proposes (and holds
 * approve_actions, so separation of duties — not a missing capability — is what stops her), reviewers
 * who read every field, all but the sensitive margin, or only the amount, one who cannot read deals,
 * and a clerk who reads deals but may not approve. An `action.run` needs two approvals.
 */
export interface ApprovalsWorld {
  admin: string;
  orgId: string;
  repSetId: string;
  tokens: Record<string, string>;
  users: Record<string, string>;
  /** A fresh requester (with her own agent token and API key), so one run's actions can be listed alone. */
  newRequester(name: string): Promise<{ userId: string; token: string; agent: string; key: string }>;
  /** A user with the given permission sets, signed in. */
  newUser(name: string, sets: string[]): Promise<{ userId: string; token: string }>;
  createDeal(token: string, title?: string): Promise<Json>;
}

export const REVIEWER_SETS = ['vp', 'ops', 'narrow', 'blind', 'clerk'] as const;

export async function buildApprovalsWorld(url: string, call: Call, ok: Ok, reviewers: Record<string, (typeof REVIEWER_SETS)[number]>) {
  const adminSession = await login(url);
  const admin = adminSession.accessToken;
  await ok(
    call('POST', '/meta/objects', admin, {
      name: 'deal',
      label: 'Deal',
      fields: [
        { name: 'title', type: 'text' },
        { name: 'amount', type: 'number' },
        { name: 'stage', type: 'text' },
        { name: 'margin', type: 'number', sensitive: true },
      ],
    }),
    201,
  );
  await ok(
    call('POST', '/bundles/apply', admin, {
      bundle: {
        apiVersion: 'custodian.dev/v1',
        kind: 'Bundle',
        name: 'approvals-world',
        actions: [{ name: 'mark_reviewed', object: 'deal', label: 'Mark reviewed', kind: 'update', set: { stage: 'reviewed' } }],
        approvalPolicies: [{ name: 'Actions need two', object: 'deal', operations: ['action'], minApprovals: 2 }],
      },
    }),
  );
  const set = async (body: Json): Promise<string> => (await ok(call('POST', '/permission-sets', admin, body), 201)).id;
  const sets: Record<string, string> = {
    rep: await set({
      name: 'Reps',
      objects: { deal: { allowRead: true, allowCreate: true, allowEdit: true } },
      fields: { deal: { '*': 'edit', margin: 'edit' } },
      systemCapabilities: ['approve_actions'],
      integrationCapabilities: ['api_access', 'agent_access'],
    }),
    vp: await set({
      name: 'VP',
      objects: { deal: { viewAllRecords: true } },
      fields: { deal: { '*': 'read', margin: 'read' } },
      systemCapabilities: ['approve_actions'],
      integrationCapabilities: ['api_access'],
    }),
    ops: await set({
      name: 'Ops reviewer',
      objects: { deal: { viewAllRecords: true } },
      fields: { deal: { '*': 'read' } },
      systemCapabilities: ['approve_actions'],
    }),
    narrow: await set({
      name: 'Amount reviewer',
      objects: { deal: { viewAllRecords: true } },
      fields: { deal: { '*': 'none', amount: 'read' } },
      systemCapabilities: ['approve_actions'],
    }),
    blind: await set({ name: 'Blind approver', systemCapabilities: ['approve_actions'] }),
    clerk: await set({ name: 'Clerk', objects: { deal: { viewAllRecords: true } }, fields: { deal: { '*': 'read' } } }),
  };
  const tokens: Record<string, string> = { admin };
  const users: Record<string, string> = {};
  const newUser = async (name: string, setIds: string[]): Promise<{ userId: string; token: string }> => {
    const email = `${name}@test.local`;
    const u = await ok(call('POST', '/users', admin, { email, displayName: name, password: PASSWORD }), 201);
    const userId = u.id as string;
    for (const id of setIds) await ok(call('POST', `/permission-sets/${id}/assignments`, admin, { userId }), 201);
    const token = (await login(url, { email, password: PASSWORD })).accessToken;
    return { userId, token };
  };
  for (const [name, kind] of Object.entries(reviewers)) {
    const u = await newUser(name, [sets[kind]]);
    tokens[name] = u.token;
    users[name] = u.userId;
  }
  const world: ApprovalsWorld = {
    admin,
    orgId: adminSession.orgId,
    repSetId: sets.rep,
    tokens,
    users,
    newUser,
    async newRequester(name) {
      const u = await newUser(name, [sets.rep]);
      const exchanged = await ok(
        call('POST', '/auth/token-exchange', undefined, {
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: u.token,
          subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
          scope: 'data:read data:write actions:execute',
          client_id: `${name}-copilot`,
          agent_name: `${name} copilot`,
        }),
      );
      const key = await ok(call('POST', '/api-keys', u.token, { name: `${name} laptop` }), 201);
      return { ...u, agent: exchanged.access_token as string, key: key.key as string };
    },
    createDeal: async (token, title = 'Deal') =>
      ok(call('POST', '/data/deal', token, { title, amount: 100, stage: 'open', margin: 0.1 }), 201),
  };
  return world;
}

/** Audit events in the approvals outbox for one pending action, counted by action. */
export async function auditCounts(db: Client, ids: string[]): Promise<Record<string, Record<string, number>>> {
  const rows = (
    await db.query<{ id: string; action: string; n: number }>(
      `SELECT payload->'target'->>'id' AS id, payload->>'action' AS action, count(*)::int AS n
         FROM approvals.outbox WHERE payload->'target'->>'id' = ANY($1::text[]) GROUP BY 1, 2`,
      [ids],
    )
  ).rows;
  const out: Record<string, Record<string, number>> = Object.fromEntries(ids.map((id) => [id, {}]));
  for (const r of rows) out[r.id][r.action] = r.n;
  return out;
}

/** How many times objects recorded an update of this record (its audit events). */
export async function recordUpdates(db: Client, recordId: string): Promise<number> {
  const r = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM objects.outbox WHERE payload->>'action' = 'objects.record.updated' AND payload->'target'->>'id' = $1`,
    [recordId],
  );
  return r.rows[0].n;
}
