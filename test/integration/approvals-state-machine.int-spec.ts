import fc from 'fast-check';
import { Client } from 'pg';
import { PendingActionApplier } from '../../apps/approvals/src/pending-actions/pending-action-applier.service';
import { apiClient, type Json } from '../support/api';
import { startTestHost, type TestHost } from '../support/host';
import { recordTable } from '../../apps/objects/src/metadata/org-tables';
import { buildApprovalsWorld, type ApprovalsWorld } from './approvals-world';

/**
 * A model-based test of the pending-action state machine against the real service over HTTP:
 * fast-check generates sequences of filing, approving, rejecting, cancelling, expiring, direct edits
 * of the target and comments by random actors (the requester, her agent, her API key, reviewers who
 * can read the record, one who cannot, a user without the approver capability). A small model says
 * what each step must answer and where every action must end; after every step the API's states,
 * the record's version and the approvals outbox (one audit event per transition, per decision, per
 * comment and per refusal) must equal the model's, and no observed state change may leave the
 * forward-only graph. Seeded: FC_SEED=<n> replays a run; APPROVALS_SM_SHRINK=1 shrinks a failure.
 */

type State = 'pending' | 'approved' | 'applied' | 'stale' | 'forbidden' | 'failed' | 'rejected' | 'cancelled' | 'expired';
/** The graph written out again here, independently of the code under test. */
const LEGAL: Record<State, State[]> = {
  pending: ['approved', 'rejected', 'cancelled', 'expired'],
  approved: ['applied', 'stale', 'forbidden', 'failed'],
  applied: [],
  stale: [],
  forbidden: [],
  failed: [],
  rejected: [],
  cancelled: [],
  expired: [],
};

const REQUESTER_SIDE = ['rep', 'agent', 'key'] as const;
const REVIEWERS = ['vp', 'vp2', 'ops', 'narrow'] as const;
const OUTSIDERS = ['blind', 'clerk'] as const;
const ACTORS = [...REQUESTER_SIDE, ...REVIEWERS, ...OUTSIDERS] as const;
type Actor = (typeof ACTORS)[number];

interface ActionModel {
  id: string;
  kind: 'update' | 'action';
  state: State;
  required: number;
  approvers: Set<string>;
  filedAtVersion: number;
  /** Expected audit events in the approvals outbox for this action, by action name. */
  events: Record<string, number>;
}

interface Model {
  version: number;
  actions: ActionModel[];
}

interface Real {
  requester: { userId: string; token: string; agent: string; key: string };
  dealId: string;
  /** The state last seen through the API, to check every observed change is a legal one. */
  seen: Map<string, State>;
  /** The requester's actions from earlier runs (they share her), so that a new unexpected one stands out. */
  earlier: Set<string>;
}

const SEED = Number(process.env.FC_SEED ?? 20260713);
const RUNS = Number(process.env.APPROVALS_SM_RUNS ?? 30);

describe('approvals: the state machine against a model (fast-check commands)', () => {
  let t: TestHost;
  let db: Client;
  let world: ApprovalsWorld;
  let applier: PendingActionApplier;
  let runNo = 0;
  let requester: Real['requester'];
  const { call, ok } = apiClient(() => t.host.url);

  beforeAll(async () => {
    // No background sweep: expiry happens exactly when a command asks for it.
    t = await startTestHost('approvals_sm', { CUSTODIAN_APPROVALS_SWEEP_MS: '0', CUSTODIAN_APPROVALS_APPLY_RETRY_MS: '600000' });
    db = new Client({ connectionString: t.db.url });
    await db.connect();
    world = await buildApprovalsWorld(t.host.url, call, ok, {
      vp: 'vp',
      vp2: 'vp',
      ops: 'ops',
      narrow: 'narrow',
      blind: 'blind',
      clerk: 'clerk',
    });
    applier = t.host.app.get(PendingActionApplier, { strict: false });
    requester = await world.newRequester('requester');
  }, 120_000);

  afterAll(async () => {
    await db?.end();
    await t?.stop();
  });

  /** Mostly an action still pending (where something can happen), sometimes any action (where nothing may). */
  const target = (m: Model, pick: number): ActionModel => {
    const live = m.actions.filter((a) => a.state === 'pending');
    const pool = live.length > 0 && pick % 4 !== 0 ? live : m.actions;
    return pool[Math.floor(pick / 4) % pool.length];
  };
  const tokenOf = (r: Real, actor: Actor): string =>
    actor === 'rep' ? r.requester.token : actor === 'agent' ? r.requester.agent : actor === 'key' ? r.requester.key : world.tokens[actor];
  const bump = (a: ActionModel, event: string): void => {
    a.events[event] = (a.events[event] ?? 0) + 1;
  };
  const expectStatus = (res: { status: number; body: Json }, status: number, what: string): void => {
    if (res.status !== status) throw new Error(`${what}: expected ${status}, got ${res.status} ${JSON.stringify(res.body)}`);
  };

  /** After every command: the API, the record and the outbox agree with the model. */
  async function invariants(m: Model, r: Real): Promise<void> {
    const page = await ok(call('GET', `/approvals?requester=${r.requester.userId}&limit=200`, world.tokens.vp));
    // Newest first: this run's actions (at most 25) are all on the first page, before earlier runs'.
    const api = new Map<string, State>(page.items.filter((i: Json) => !r.earlier.has(i.id)).map((i: Json) => [i.id, i.state]));
    expect([...api.keys()].sort()).toEqual(m.actions.map((a) => a.id).sort());
    for (const a of m.actions) {
      const now = api.get(a.id)!;
      const before = r.seen.get(a.id) ?? 'pending';
      // One approving request moves pending → approved → final, so the API can show both steps at once.
      const legal = LEGAL[before].includes(now) || (before === 'pending' && LEGAL.approved.includes(now));
      if (now !== before && !legal) throw new Error(`illegal transition ${before} → ${now} for ${a.id}`);
      r.seen.set(a.id, now);
      expect({ id: a.id, state: now }).toEqual({ id: a.id, state: a.state });
    }
    const [{ version }] = (
      await db.query<{ version: number }>(`SELECT version FROM ${recordTable(world.orgId, 'deal')} WHERE id = $1`, [r.dealId])
    ).rows;
    expect(version).toBe(m.version);
    const ids = m.actions.map((a) => a.id);
    const events = (
      await db.query<{ id: string; action: string; from: State | null; to: State | null }>(
        `SELECT payload->'target'->>'id' AS id, payload->>'action' AS action,
                payload->'details'->>'from' AS "from", payload->'details'->>'to' AS "to"
           FROM approvals.outbox WHERE payload->'target'->>'id' = ANY($1::text[]) ORDER BY created_at`,
        [ids],
      )
    ).rows;
    for (const a of m.actions) {
      const mine = events.filter((e) => e.id === a.id);
      const counts: Record<string, number> = {};
      for (const e of mine) counts[e.action] = (counts[e.action] ?? 0) + 1;
      expect({ id: a.id, events: counts }).toEqual({ id: a.id, events: a.events });
      // Every transition the outbox recorded is an edge of the graph, and the chain is unbroken.
      let state: State = 'pending';
      for (const e of mine.filter((x) => x.to !== null)) {
        expect({ id: a.id, from: e.from, legal: LEGAL[state].includes(e.to!) }).toEqual({ id: a.id, from: state, legal: true });
        state = e.to!;
      }
      expect({ id: a.id, chainEndsIn: state }).toEqual({ id: a.id, chainEndsIn: a.state });
    }
  }

  /** What a decision (approve or reject) by this actor must answer, before the action's own state is looked at. */
  function refusalFor(actor: Actor): { status: number } | undefined {
    if (actor === 'agent') return { status: 403 }; // agents never review
    if (actor === 'clerk') return { status: 403 }; // no approver capability
    if (actor === 'rep' || actor === 'key') return { status: 403 }; // separation of duties, also through her key
    if (actor === 'blind') return { status: 404 }; // cannot read the target: the action does not exist for them
    return undefined;
  }

  class File implements fc.AsyncCommand<Model, Real> {
    constructor(
      readonly by: 'rep' | 'agent' | 'key' | 'ops',
      readonly kind: 'update' | 'action',
      readonly amount: number,
    ) {}
    check = (): boolean => true;
    async run(m: Model, r: Real): Promise<void> {
      const body =
        this.kind === 'update'
          ? { kind: 'record.update', object: 'deal', recordId: r.dealId, values: { amount: this.amount } }
          : { kind: 'action.run', object: 'deal', recordId: r.dealId, action: 'mark_reviewed' };
      const res = await call('POST', '/approvals', tokenOf(r, this.by), { ...body, justification: 'model run' });
      if (this.by === 'ops') {
        // A reviewer who may only read deals cannot propose a change to one: refused before it is queued.
        expectStatus(res, 403, String(this));
      } else {
        expectStatus(res, 201, String(this));
        expect(res.body).toMatchObject({ state: 'pending', revision: 1, requiredApprovals: this.kind === 'action' ? 2 : 1 });
        m.actions.push({
          id: res.body.id,
          kind: this.kind,
          state: 'pending',
          required: this.kind === 'action' ? 2 : 1,
          approvers: new Set(),
          filedAtVersion: m.version,
          events: { 'approvals.action.requested': 1 },
        });
      }
      await invariants(m, r);
    }
    toString = (): string => `file(${this.by}, ${this.kind}, ${this.amount})`;
  }

  class Decide implements fc.AsyncCommand<Model, Real> {
    constructor(
      readonly pick: number,
      readonly actor: Actor,
      readonly decision: 'approve' | 'reject',
      readonly ifMatch: '"1"' | '"2"' | undefined,
    ) {}
    check = (m: Readonly<Model>): boolean => m.actions.length > 0;
    async run(m: Model, r: Real): Promise<void> {
      const a = target(m, this.pick);
      const res = await call(
        'POST',
        `/approvals/${a.id}/${this.decision}`,
        tokenOf(r, this.actor),
        this.decision === 'reject' ? { reason: 'not now' } : {},
        this.ifMatch ? { 'if-match': this.ifMatch } : {},
      );
      const refusal = refusalFor(this.actor);
      if (refusal) {
        expectStatus(res, refusal.status, String(this));
        bump(a, 'authz.denied');
      } else if (a.state !== 'pending') {
        expectStatus(res, 409, String(this));
      } else if (this.ifMatch === '"2"') {
        expectStatus(res, 412, String(this));
      } else if (a.approvers.has(this.actor)) {
        expectStatus(res, 409, String(this));
      } else if (this.decision === 'reject') {
        expectStatus(res, 200, String(this));
        a.state = 'rejected';
        bump(a, 'approvals.action.rejected');
      } else {
        expectStatus(res, 200, String(this));
        a.approvers.add(this.actor);
        bump(a, 'approvals.action.approved');
        if (a.approvers.size >= a.required) {
          // The last approval applies at once, with the version the diff was computed on.
          if (a.filedAtVersion === m.version) {
            a.state = 'applied';
            m.version++;
            bump(a, 'approvals.action.applied');
          } else {
            a.state = 'stale';
            bump(a, 'approvals.action.failed');
          }
        }
        expect(res.body.state).toBe(a.state);
      }
      await invariants(m, r);
    }
    toString = (): string => `${this.decision}(#${this.pick}, ${this.actor}${this.ifMatch ? `, If-Match ${this.ifMatch}` : ''})`;
  }

  class Cancel implements fc.AsyncCommand<Model, Real> {
    constructor(
      readonly pick: number,
      readonly actor: Actor,
    ) {}
    check = (m: Readonly<Model>): boolean => m.actions.length > 0;
    async run(m: Model, r: Real): Promise<void> {
      const a = target(m, this.pick);
      const res = await call('POST', `/approvals/${a.id}/cancel`, tokenOf(r, this.actor), { reason: 'withdrawn' });
      if (!(REQUESTER_SIDE as readonly string[]).includes(this.actor)) {
        expectStatus(res, 404, String(this));
      } else if (a.state !== 'pending') {
        expectStatus(res, 409, String(this));
      } else {
        expectStatus(res, 200, String(this));
        a.state = 'cancelled';
        bump(a, 'approvals.action.cancelled');
      }
      await invariants(m, r);
    }
    toString = (): string => `cancel(#${this.pick}, ${this.actor})`;
  }

  class Expire implements fc.AsyncCommand<Model, Real> {
    constructor(
      readonly pick: number,
      readonly via: 'sweep' | 'approve',
    ) {}
    check = (m: Readonly<Model>): boolean => m.actions.length > 0;
    async run(m: Model, r: Real): Promise<void> {
      const a = target(m, this.pick);
      const backdate = db.query(`UPDATE approvals.pending_action SET expires_at = now() - interval '1 second' WHERE id = $1`, [a.id]);
      // A final action is frozen: the database refuses any change to its row, its expiry included.
      if (a.state !== 'pending') await expect(backdate).rejects.toThrow(/is final/);
      else await backdate;
      if (this.via === 'sweep') {
        await applier.expireDue();
      } else {
        // A reviewer who arrives too late: refused, and the action is expired on the way.
        expectStatus(await call('POST', `/approvals/${a.id}/approve`, world.tokens.vp, {}), 409, String(this));
      }
      if (a.state === 'pending') {
        a.state = 'expired';
        bump(a, 'approvals.action.expired');
      }
      await invariants(m, r);
    }
    toString = (): string => `expire(#${this.pick}, via ${this.via})`;
  }

  class DirectEdit implements fc.AsyncCommand<Model, Real> {
    constructor(
      readonly amount: number,
      readonly staleTag: boolean,
    ) {}
    check = (): boolean => true;
    async run(m: Model, r: Real): Promise<void> {
      const tag = this.staleTag ? m.version + 1 : m.version;
      const res = await call('PATCH', `/data/deal/${r.dealId}`, r.requester.token, { amount: this.amount }, { 'if-match': `"${tag}"` });
      if (this.staleTag) expectStatus(res, 412, String(this));
      else {
        expectStatus(res, 200, String(this));
        m.version++;
      }
      await invariants(m, r);
    }
    toString = (): string => `edit(amount ${this.amount}${this.staleTag ? ', stale If-Match' : ''})`;
  }

  class Comment implements fc.AsyncCommand<Model, Real> {
    constructor(
      readonly pick: number,
      readonly actor: Actor,
    ) {}
    check = (m: Readonly<Model>): boolean => m.actions.length > 0;
    async run(m: Model, r: Real): Promise<void> {
      const a = target(m, this.pick);
      const res = await call('POST', `/approvals/${a.id}/comments`, tokenOf(r, this.actor), { body: 'looks fine?' });
      if ((OUTSIDERS as readonly string[]).includes(this.actor)) expectStatus(res, 404, String(this));
      else {
        expectStatus(res, 204, String(this));
        bump(a, 'approvals.action.commented');
      }
      await invariants(m, r);
    }
    toString = (): string => `comment(#${this.pick}, ${this.actor})`;
  }

  const actor = fc.constantFrom<Actor>(...ACTORS);
  // Reviewers who can act are drawn more often, so runs reach approvals and applies, not only refusals.
  const decider = fc.oneof({ arbitrary: fc.constantFrom<Actor>(...REVIEWERS), weight: 3 }, { arbitrary: actor, weight: 2 });
  const decide = fc
    .tuple(
      fc.nat(),
      decider,
      fc.constantFrom('approve', 'approve', 'approve', 'reject' as const),
      fc.constantFrom(undefined, undefined, '"1"', '"2"' as const),
    )
    .map(([pick, who, decision, tag]) => new Decide(pick, who, decision, tag));
  const edit = fc.tuple(fc.integer({ min: 1, max: 1e6 }), fc.boolean()).map(([amount, stale]) => new DirectEdit(amount, stale));
  // Weighted towards filing and deciding, which move actions to their final states (applied, stale, rejected).
  const commands = [
    fc.oneof(
      { arbitrary: decide, weight: 5 },
      {
        arbitrary: fc
          .tuple(
            fc.constantFrom('rep', 'agent', 'key', 'ops', 'agent' as const),
            fc.constantFrom('update', 'update', 'action' as const),
            fc.integer({ min: 1, max: 1e6 }),
          )
          .map(([by, kind, amount]) => new File(by, kind, amount)),
        weight: 3,
      },
      { arbitrary: edit, weight: 3 },
      { arbitrary: fc.tuple(fc.nat(), actor).map(([pick, who]) => new Cancel(pick, who)), weight: 1 },
      {
        arbitrary: fc.tuple(fc.nat(), fc.constantFrom('sweep', 'approve' as const)).map(([pick, via]) => new Expire(pick, via)),
        weight: 1,
      },
      { arbitrary: fc.tuple(fc.nat(), actor).map(([pick, who]) => new Comment(pick, who)), weight: 1 },
    ),
  ];

  it(`${RUNS} seeded runs of up to 25 commands: answers, states, record version and audit events match the model`, async () => {
    const stats = { commands: 0, actions: 0, applied: 0, stale: 0, expired: 0 };
    const states: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 25, size: 'max' }), async (cmds) => {
        stats.commands += [...cmds].length;
        const setup = async (): Promise<{ model: Model; real: Real }> => {
          const deal = await world.createDeal(requester.token, `Model run ${++runNo}`);
          const before = await ok(call('GET', `/approvals?requester=${requester.userId}&limit=200`, world.tokens.vp));
          const earlier = new Set<string>(before.items.map((i: Json) => i.id));
          return {
            model: { version: deal.version as number, actions: [] },
            real: { requester, dealId: deal.id, seen: new Map(), earlier },
          };
        };
        let last: Model | undefined;
        await fc.asyncModelRun(async () => {
          const s = await setup();
          last = s.model;
          return s;
        }, cmds);
        if (process.env.SM_DEBUG) console.log(String(cmds));
        for (const a of last!.actions) {
          states[a.state] = (states[a.state] ?? 0) + 1;
          stats.actions++;
          if (a.state === 'applied') stats.applied++;
          if (a.state === 'stale') stats.stale++;
          if (a.state === 'expired') stats.expired++;
        }
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: process.env.APPROVALS_SM_SHRINK !== '1', verbose: true },
    );
    console.log(`state machine: ${JSON.stringify(stats)} ${JSON.stringify(states)}`);
    // The generator must actually reach the interesting states, or the property proves little.
    expect(stats.applied).toBeGreaterThan(0);
    expect(stats.stale).toBeGreaterThan(0);
    expect(stats.expired).toBeGreaterThan(0);
  }, 300_000);
});
