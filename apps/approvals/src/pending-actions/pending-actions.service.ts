import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  AuditEventRecorded,
  DryRunMetadataChange,
  DryRunPermissionChange,
  DryRunRecordOperation,
  ErrorCode,
  PERMISSION_CHANGE_CAPABILITY,
  PendingActionChanged,
  ReviewRecord,
  permissionChangeSubject,
  type AuditEvent,
  type FiledAction,
  type PermissionImpact,
  type PendingActionKind,
  type PendingActionState,
  type PrincipalSnapshot,
  type Proposal,
  type Proposer,
  type RecordOperationResult,
  type ResponseOf,
} from '@custodian/contracts';
import {
  BUS,
  CONFIG,
  CustodianException,
  OutboxWriter,
  SERVICE_DATA_SOURCE,
  type AuditEventInput,
  type Bus,
  type CustodianConfig,
} from '@custodian/platform';
import type { Capability } from '@custodian/policy';
import type { DataSource, EntityManager } from 'typeorm';
import { ApprovalPolicyEntity } from '../entities/approval-policy.entity';
import { PendingActionCommentEntity } from '../entities/pending-action-comment.entity';
import { PendingActionDecisionEntity } from '../entities/pending-action-decision.entity';
import { PendingActionEntity } from '../entities/pending-action.entity';
import { holdsAny } from '../policies/approval-policies.service';
import { auditActionFor, canTransition } from './pending-action-states';

export const DEFAULT_APPROVER_CAPABILITY: Capability = 'approve_actions';
export const MAX_PAGE = 200;

type FieldDiff = Record<string, { from: unknown; to: unknown } | { hidden: true }>;

export interface ListQuery {
  status?: PendingActionState;
  object?: string;
  requester?: string;
  agent?: string;
  waitingForMe?: boolean;
  mine?: boolean;
  cursor?: string;
  limit: number;
}

export interface PendingActionSummary {
  id: string;
  kind: string;
  state: PendingActionState;
  revision: number;
  object: string;
  recordId: string | null;
  requester: { userId: string; agent?: { clientId: string; name: string } };
  justification: string;
  policy: string | null;
  requiredApprovals: number;
  approverCapability: string;
  expiresAt: string;
  createdAt: string;
  updatedAt: string;
}

export interface PendingActionDetail extends PendingActionSummary {
  requesterDetail: Proposer;
  /**
   * Proposed changes; a field the reviewer cannot read shows as `{ hidden: true }`, never its values.
   * For metadata.change, the definition diff (fields added, removed, changed; object properties).
   */
  diff: FieldDiff | Record<string, unknown>;
  /** action.run: the declared action. */
  action: string | null;
  /** The record's current values the reviewer can read (update / delete); null for a create. */
  current: Record<string, unknown> | null;
  context: Record<string, unknown>;
  decisions: Array<{ approverUserId: string; decision: string; reason: string | null; revision: number; at: string }>;
  comments: Array<{ authorUserId: string; body: string; at: string }>;
  outcome: { code?: string; message?: string; version?: number | null } | null;
}

const summary = (row: PendingActionEntity): PendingActionSummary => ({
  id: row.id,
  kind: row.kind,
  state: row.state,
  revision: row.revision,
  object: row.objectName,
  recordId: row.recordId,
  requester: {
    userId: row.requesterUserId,
    ...(row.requester.agent ? { agent: { clientId: row.requester.agent.clientId, name: row.requester.agent.name } } : {}),
  },
  justification: row.justification,
  policy: row.policyName,
  requiredApprovals: row.requiredApprovals,
  approverCapability: row.approverCapability,
  expiresAt: row.expiresAt.toISOString(),
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString(),
});

/** The columns a list shows (not the values, diff or context: those are for one action's review). */
const SUMMARY_COLUMNS = `a.id, a.seq, a.kind, a.state, a.revision, a.object_name, a.record_id, a.requester_user_id,
  a.requester->'agent'->>'clientId' AS agent_client, a.requester->'agent'->>'name' AS agent_name, a.justification, a.policy_name,
  a.required_approvals, a.approver_capability, a.expires_at, a.created_at, a.updated_at`;

interface SummaryRow {
  id: string;
  seq: string;
  kind: string;
  state: PendingActionState;
  revision: number;
  object_name: string;
  record_id: string | null;
  requester_user_id: string;
  agent_client: string | null;
  agent_name: string | null;
  justification: string;
  policy_name: string | null;
  required_approvals: number;
  approver_capability: string;
  expires_at: Date;
  created_at: Date;
  updated_at: Date;
}

const summaryOfRow = (r: SummaryRow): PendingActionSummary => ({
  id: r.id,
  kind: r.kind,
  state: r.state,
  revision: r.revision,
  object: r.object_name,
  recordId: r.record_id,
  requester: {
    userId: r.requester_user_id,
    ...(r.agent_client !== null ? { agent: { clientId: r.agent_client, name: r.agent_name ?? '' } } : {}),
  },
  justification: r.justification,
  policy: r.policy_name,
  requiredApprovals: r.required_approvals,
  approverCapability: r.approver_capability,
  expiresAt: r.expires_at.toISOString(),
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
});

/** The operation objects runs for a record kind (an action runs as an update). */
export const RECORD_OPERATION = {
  'record.create': 'create',
  'record.update': 'update',
  'record.delete': 'delete',
  'action.run': 'update',
  'metadata.change': 'update',
  'permission.change': 'update',
} as const;

/** The operation an approval policy names for a kind; metadata changes are not named by policies. */
const POLICY_OPERATION: Record<PendingActionKind, 'create' | 'update' | 'delete' | 'action' | undefined> = {
  'record.create': 'create',
  'record.update': 'update',
  'record.delete': 'delete',
  'action.run': 'action',
  'metadata.change': undefined,
  'permission.change': undefined,
};

/** Which parts a proposal of each kind must have and must not have. */
const SHAPE: Record<PendingActionKind, { recordId: boolean; values: boolean; action: boolean }> = {
  'record.create': { recordId: false, values: true, action: false },
  'record.update': { recordId: true, values: true, action: false },
  'record.delete': { recordId: true, values: false, action: false },
  'action.run': { recordId: true, values: false, action: true },
  'metadata.change': { recordId: false, values: true, action: false },
  'permission.change': { recordId: false, values: false, action: false },
};

function checkShape(proposal: Proposal): void {
  const shape = SHAPE[proposal.kind];
  const issues: Array<{ path: string; message: string }> = [];
  for (const part of ['recordId', 'values', 'action'] as const) {
    const present = proposal[part] !== undefined;
    if (shape[part] && !present) issues.push({ path: `/${part}`, message: `required for ${proposal.kind}` });
    if (!shape[part] && present) issues.push({ path: `/${part}`, message: `not allowed for ${proposal.kind}` });
  }
  // A permission change names its target inside `change`; every other kind names an object.
  const permission = proposal.kind === 'permission.change';
  if (permission !== (proposal.change !== undefined))
    issues.push({ path: '/change', message: permission ? 'required for permission.change' : `not allowed for ${proposal.kind}` });
  if (permission === (proposal.object !== undefined))
    issues.push({ path: '/object', message: permission ? 'not allowed for permission.change' : `required for ${proposal.kind}` });
  if (permission && proposal.expectedVersion !== undefined)
    issues.push({ path: '/expectedVersion', message: 'not allowed for permission.change' });
  if (issues.length > 0) throw new CustodianException(ErrorCode.ValidationFailed, 'Invalid proposal', { issues });
}

/** The object a proposal is filed under: a permission change's set, role or rule object. */
function objectOf(proposal: Proposal): string {
  return proposal.change ? permissionChangeSubject(proposal.change) : proposal.object!;
}

/** Dry-run refusals keep their meaning at the edge. */
function refused(result: Pick<RecordOperationResult, 'outcome' | 'code' | 'message'>): CustodianException {
  const message = result.message ?? 'The change was refused';
  const details = result.code ? { reason: result.code } : undefined;
  switch (result.outcome) {
    case 'not_found':
      return new CustodianException(ErrorCode.NotFound, 'Record not found');
    case 'forbidden':
      return new CustodianException(ErrorCode.Forbidden, message, details);
    case 'stale':
      return new CustodianException(ErrorCode.PreconditionFailed, message, details);
    case 'conflict':
      return new CustodianException(ErrorCode.Conflict, message, details);
    default:
      return new CustodianException(ErrorCode.ValidationFailed, message, details);
  }
}

/**
 * The pending-action queue: filing (validated by objects' dry-run under the proposer's permission
 * now), review with separation of duties, and every state change in one transaction with its
 * audit event. Applying approved actions is PendingActionApplier's job.
 */
@Injectable()
export class PendingActionsService {
  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(BUS) private readonly bus: Bus,
    @Inject(CONFIG) private readonly config: CustodianConfig,
  ) {}

  /** A principal as the proposer of a change: the user, the credential and the agent. */
  static proposerOf(p: PrincipalSnapshot): Proposer {
    return {
      userId: p.userId,
      orgId: p.orgId,
      ...(p.sessionId ? { sessionId: p.sessionId } : {}),
      ...(p.apiKeyId ? { apiKeyId: p.apiKeyId } : {}),
      ...(p.agent ? { agent: { clientId: p.agent.clientId, name: p.agent.name, scopes: [...p.agent.scopes] } } : {}),
    };
  }

  async file(proposer: Proposer, proposal: Proposal): Promise<FiledAction> {
    checkShape(proposal);
    // With no matching policy, an agent's change (and a human's explicit proposal) still needs one approver.
    // The policy is looked up while objects dry-runs the change: neither depends on the other.
    const operation = POLICY_OPERATION[proposal.kind];
    const [dry, policy] = await Promise.all([
      // Validated now, under the proposer's permission (user ∩ agent): an invalid change is never queued.
      this.dryRun(proposer, proposal),
      operation ? this.matchPolicy(proposer.orgId, objectOf(proposal), operation) : undefined,
    ]);
    if (proposal.expectedVersion !== undefined && dry.version !== proposal.expectedVersion)
      throw new CustodianException(ErrorCode.PreconditionFailed, 'The target has changed (version mismatch)', {
        currentVersion: dry.version,
      });
    // A metadata or permission change is reviewed by holders of the capability its direct route needs.
    const defaultCapability = proposal.change
      ? PERMISSION_CHANGE_CAPABILITY[proposal.change.type]
      : proposal.kind === 'metadata.change'
        ? 'manage_metadata'
        : DEFAULT_APPROVER_CAPABILITY;
    const id = randomUUID();
    const row = await this.ds.transaction(async (m) => {
      const entity = m.create(PendingActionEntity, {
        id,
        orgId: proposer.orgId,
        kind: proposal.kind,
        state: 'pending',
        revision: 1,
        requesterUserId: proposer.userId,
        requester: proposer,
        agentClientId: proposer.agent?.clientId ?? null,
        objectName: objectOf(proposal),
        recordId: proposal.recordId ?? null,
        actionName: proposal.action ?? null,
        expectedVersion: dry.version ?? null,
        values: dry.values,
        diff: dry.diff,
        justification: proposal.justification,
        context: proposal.context ?? {},
        policyName: policy?.name ?? null,
        approverCapability: policy?.definition.approverCapability ?? defaultCapability,
        requiredApprovals: policy?.definition.minApprovals ?? 1,
        expiresAt: new Date(Date.now() + this.config.approvals.ttlSeconds * 1000),
        outcome: null,
        applyAttempts: 0,
      });
      await m.insert(PendingActionEntity, entity as never);
      await this.outbox.append(m, {
        orgId: proposer.orgId,
        action: 'approvals.action.requested',
        outcome: 'success',
        actor: this.actorOf(proposer),
        target: { type: 'pending_action', id },
        details: {
          kind: proposal.kind,
          object: objectOf(proposal),
          ...(proposal.recordId ? { recordId: proposal.recordId } : {}),
          ...(proposal.change ? { change: proposal.change.type } : {}),
          policy: policy?.name ?? null,
          requiredApprovals: entity.requiredApprovals,
          ...(proposer.agent ? { agent: { clientId: proposer.agent.clientId, name: proposer.agent.name } } : {}),
        },
      });
      // What the answer and the notice need was all set here; the insert filled in the generated columns.
      return entity;
    });
    await this.notify(row);
    return {
      id: row.id,
      state: row.state,
      revision: row.revision,
      diff: row.diff,
      expiresAt: row.expiresAt.toISOString(),
      requiredApprovals: row.requiredApprovals,
      policy: row.policyName,
    };
  }

  /** Objects' dry-run of the proposal under the proposer's permission; a refusal is thrown with its meaning. */
  private async dryRun(
    proposer: Proposer,
    proposal: Proposal,
  ): Promise<{ version: number | null; values: Record<string, unknown>; diff: Record<string, unknown> }> {
    const requester = { userId: proposer.userId, orgId: proposer.orgId, ...(proposer.agent ? { agent: proposer.agent } : {}) };
    if (proposal.change) {
      // The impact is what reviewers see; the change and the version it was computed on are what is applied.
      const dry = await this.bus.request(DryRunPermissionChange, { requester, change: proposal.change });
      if (dry.outcome !== 'allowed' || !dry.impact || !dry.version) throw refused(dry);
      return { version: null, values: { change: proposal.change, version: dry.version }, diff: dry.impact };
    }
    if (proposal.kind === 'metadata.change') {
      const dry = await this.bus.request(DryRunMetadataChange, {
        requester,
        object: objectOf(proposal),
        definition: proposal.values ?? {},
      });
      if (dry.outcome !== 'allowed') throw refused(dry);
      return { version: dry.version ?? null, values: proposal.values ?? {}, diff: dry.diff ?? {} };
    }
    const dry = await this.bus.request(DryRunRecordOperation, {
      requester,
      operation: RECORD_OPERATION[proposal.kind],
      object: objectOf(proposal),
      ...(proposal.recordId ? { recordId: proposal.recordId } : {}),
      ...(proposal.values ? { values: proposal.values } : {}),
      ...(proposal.action ? { action: proposal.action } : {}),
    });
    if (dry.outcome !== 'allowed') throw refused(dry);
    // An action's values are resolved by objects; they are what reviewers approve and what is applied.
    return { version: dry.version ?? null, values: dry.values ?? proposal.values ?? {}, diff: dry.diff ?? {} };
  }

  /** The strictest of the org's approval policies that names this operation on this object (or on every object). */
  async matchPolicy(
    orgId: string,
    object: string,
    operation: 'create' | 'update' | 'delete' | 'action',
  ): Promise<ApprovalPolicyEntity | undefined> {
    const policies = await this.ds.getRepository(ApprovalPolicyEntity).find({ where: { orgId }, order: { name: 'ASC' } });
    return policies
      .filter((p) => (p.definition.object === undefined || p.definition.object === object) && p.definition.operations.includes(operation))
      .sort((a, b) => b.definition.minApprovals - a.definition.minApprovals)[0];
  }

  /**
   * The inbox: the actions a caller may review (by approver capability) and their own proposals.
   * Keyset paging on `seq` (newest first), no count. "Waiting for me" reads, per approver
   * capability the caller holds, the newest pending actions from the partial index
   * `pending_action_waiting` (org, capability, seq WHERE pending) and merges them, so its first
   * page costs the same with 100,000 pending actions in the org, whichever capabilities they need.
   */
  async list(principal: PrincipalSnapshot, q: ListQuery): Promise<{ items: PendingActionSummary[]; nextCursor: string | null }> {
    const where = ['a.org_id = $1'];
    const params: unknown[] = [principal.orgId];
    const add = (sql: string, value: unknown): void => {
      params.push(value);
      where.push(sql.replaceAll('?', `$${params.length}`));
    };
    const waiting = q.waitingForMe && !principal.agent && !q.mine;
    // A reviewer sees the actions whose approver capability they hold (approve_actions, manage_metadata, …) and
    // their own; an agent or anyone else only their own proposals.
    if (principal.agent || q.mine) add('a.requester_user_id = ?', principal.userId);
    else if (!waiting) {
      params.push(principal.userId, principal.capabilities);
      where.push(`(a.requester_user_id = $${params.length - 1} OR a.approver_capability = ANY($${params.length}::text[]))`);
    }
    if (q.status) add('a.state = ?', q.status);
    if (q.object) add('a.object_name = ?', q.object);
    if (q.requester) add('a.requester_user_id = ?', q.requester);
    if (q.agent) add('a.agent_client_id = ?', q.agent);
    if (q.waitingForMe) {
      where.push(`a.state = 'pending'`);
      add('a.requester_user_id <> ?', principal.userId);
      // Waiting for me: one capability of the caller's per lateral scan (c.cap); otherwise any of them.
      if (waiting) where.push('a.approver_capability = c.cap');
      else add('a.approver_capability = ANY(?::text[])', principal.capabilities);
      add('NOT EXISTS (SELECT 1 FROM pending_action_decision d WHERE d.action_id = a.id AND d.approver_user_id = ?)', principal.userId);
    }
    if (q.cursor) add('a.seq < ?::bigint', q.cursor);
    params.push(q.limit + 1);
    const limit = `$${params.length}`;
    const page = `SELECT ${SUMMARY_COLUMNS} FROM pending_action a WHERE ${where.join(' AND ')} ORDER BY a.seq DESC LIMIT ${limit}`;
    let sql = page;
    if (waiting) {
      params.push(principal.capabilities);
      sql = `SELECT w.* FROM unnest(ARRAY(SELECT DISTINCT unnest($${params.length}::text[]))) AS c(cap)
               CROSS JOIN LATERAL (${page}) w ORDER BY w.seq DESC LIMIT ${limit}`;
    }
    const rows = (await this.ds.query(sql, params)) as SummaryRow[];
    const items = rows.slice(0, q.limit);
    return { items: items.map(summaryOfRow), nextCursor: rows.length > q.limit ? String(items[items.length - 1].seq) : null };
  }

  /**
   * One action as this reader may see it: its proposer, or a reviewer who holds its approver
   * capability and can read the target record. Anyone else gets 404, as for an unknown id.
   */
  async get(principal: PrincipalSnapshot, id: string): Promise<PendingActionDetail> {
    const row = await this.ds.getRepository(PendingActionEntity).findOne({ where: { id, orgId: principal.orgId } });
    if (!row) throw CustodianException.notFound('Pending action not found');
    const isRequester = row.requesterUserId === principal.userId;
    if (!isRequester && !holdsAny(principal, [row.approverCapability as Capability]))
      throw CustodianException.notFound('Pending action not found');
    const review = await this.review(principal, row);
    if (review.outcome !== 'ok' && !isRequester) throw CustodianException.notFound('Pending action not found');
    const readable = new Set(review.readableFields);
    const [decisions, comments] = await Promise.all([
      this.ds.getRepository(PendingActionDecisionEntity).find({ where: { actionId: id }, order: { createdAt: 'ASC' } }),
      this.ds.getRepository(PendingActionCommentEntity).find({ where: { actionId: id }, order: { createdAt: 'ASC' }, take: 500 }),
    ]);
    return {
      ...summary(row),
      requesterDetail: row.requester,
      diff:
        row.kind === 'permission.change'
          ? await this.impactFor(principal, row.diff as PermissionImpact)
          : row.kind === 'metadata.change'
            ? row.diff
            : filterDiff(row.diff as Record<string, { from: unknown; to: unknown }>, readable),
      action: row.actionName,
      current:
        row.kind === 'record.create' || row.kind === 'metadata.change' || row.kind === 'permission.change' ? null : (review.record ?? null),
      context: row.context,
      decisions: decisions.map((d) => ({
        approverUserId: d.approverUserId,
        decision: d.decision,
        reason: d.reason,
        revision: d.revision,
        at: d.createdAt.toISOString(),
      })),
      comments: comments.map((c) => ({ authorUserId: c.authorUserId, body: c.body, at: c.createdAt.toISOString() })),
      outcome: row.outcome,
    };
  }

  /** For the proposer following its proposal (the gateway's get_pending_action). */
  async stateFor(proposer: Proposer, id: string): Promise<PendingActionEntity> {
    const row = await this.ds.getRepository(PendingActionEntity).findOne({ where: { id, orgId: proposer.orgId } });
    if (!row || row.requesterUserId !== proposer.userId) throw CustodianException.notFound('Pending action not found');
    return row;
  }

  /**
   * Approves the revision the reviewer saw. Separation of duties: never the requester (also not
   * through an agent or a key of theirs), never an agent, only holders of the action's approver
   * capability who can read the target. The last needed approval moves the action to `approved`
   * in the same transaction; racing approvers serialise on the row lock, and the loser gets 409.
   */
  async approve(principal: PrincipalSnapshot, id: string, revision: number | undefined, comment?: string): Promise<PendingActionEntity> {
    return this.decide(principal, id, revision, 'approve', comment ?? null);
  }

  async reject(principal: PrincipalSnapshot, id: string, revision: number | undefined, reason: string): Promise<PendingActionEntity> {
    return this.decide(principal, id, revision, 'reject', reason);
  }

  private async decide(
    principal: PrincipalSnapshot,
    id: string,
    revision: number | undefined,
    decision: 'approve' | 'reject',
    reason: string | null,
  ): Promise<PendingActionEntity> {
    const peek = await this.ds.getRepository(PendingActionEntity).findOne({ where: { id, orgId: principal.orgId } });
    if (!peek) throw CustodianException.notFound('Pending action not found');
    if (principal.agent) return this.deny(principal, peek, 'agent_cannot_review', 'An agent cannot approve or reject changes');
    if (!holdsAny(principal, [peek.approverCapability as Capability])) {
      await this.deny(principal, peek, 'missing_capability', 'Missing capability', { missing: [peek.approverCapability] }, true);
    }
    if (peek.requesterUserId === principal.userId)
      return this.deny(principal, peek, 'self_approval', 'The requester cannot decide their own change (separation of duties)');
    // The reviewer must be able to read the target now (and so see what they approve).
    const review = await this.review(principal, peek);
    if (review.outcome !== 'ok')
      return this.deny(principal, peek, 'target_not_readable', 'Pending action not found', undefined, false, true);

    const outcome = await this.ds.transaction(async (m) => {
      const row = await m.findOne(PendingActionEntity, { where: { id }, lock: { mode: 'pessimistic_write' } });
      if (!row) throw CustodianException.notFound('Pending action not found');
      if (row.state !== 'pending')
        throw new CustodianException(ErrorCode.Conflict, `The action is already ${row.state}`, { state: row.state });
      if (revision !== undefined && revision !== row.revision)
        throw new CustodianException(ErrorCode.PreconditionFailed, 'The proposal has changed since you saw it', {
          currentRevision: row.revision,
        });
      if (row.expiresAt.getTime() <= Date.now()) {
        await this.transition(m, row, 'expired', { reason: 'expired' });
        return { expired: true as const, row };
      }
      const prior = await m.findOne(PendingActionDecisionEntity, { where: { actionId: id, approverUserId: principal.userId } });
      if (prior) throw new CustodianException(ErrorCode.Conflict, 'You have already decided this action', { decision: prior.decision });
      await m.insert(PendingActionDecisionEntity, {
        id: randomUUID(),
        actionId: id,
        orgId: row.orgId,
        approverUserId: principal.userId,
        credential: {
          ...(principal.sessionId ? { sessionId: principal.sessionId } : {}),
          ...(principal.apiKeyId ? { apiKeyId: principal.apiKeyId } : {}),
        },
        decision,
        reason,
        revision: row.revision,
      });
      if (decision === 'reject') {
        await this.transition(m, row, 'rejected', { reason }, principal);
        return { expired: false as const, row };
      }
      const [{ n }] = (await m.query(
        `SELECT count(DISTINCT approver_user_id)::int AS n FROM pending_action_decision
          WHERE action_id = $1 AND decision = 'approve' AND revision = $2 AND approver_user_id <> $3`,
        [id, row.revision, row.requesterUserId],
      )) as Array<{ n: number }>;
      if (n >= row.requiredApprovals) {
        await this.transition(m, row, 'approved', { approvals: n }, principal);
      } else {
        await this.auditPartialApproval(m, principal, row, n);
      }
      return { expired: false as const, row };
    });
    await this.notify(outcome.row);
    if (outcome.expired) throw new CustodianException(ErrorCode.Conflict, 'The action has expired', { state: 'expired' });
    return outcome.row;
  }

  /** An approval that is not yet the last one needed: audited, the action stays pending. */
  async auditPartialApproval(m: EntityManager, principal: PrincipalSnapshot, row: PendingActionEntity, approvals: number): Promise<void> {
    await this.outbox.append(m, {
      orgId: row.orgId,
      action: 'approvals.action.approved',
      outcome: 'success',
      actor: this.actorOf(PendingActionsService.proposerOf(principal)),
      target: { type: 'pending_action', id: row.id },
      details: { approvals, requiredApprovals: row.requiredApprovals, final: false },
    });
  }

  /** The requester (or an agent acting for them) withdraws a pending proposal. */
  async cancel(principal: PrincipalSnapshot, id: string, reason: string | null): Promise<PendingActionEntity> {
    const row = await this.ds.transaction(async (m) => {
      const r = await m.findOne(PendingActionEntity, { where: { id, orgId: principal.orgId }, lock: { mode: 'pessimistic_write' } });
      if (!r || r.requesterUserId !== principal.userId) throw CustodianException.notFound('Pending action not found');
      if (r.state !== 'pending') throw new CustodianException(ErrorCode.Conflict, `The action is already ${r.state}`, { state: r.state });
      await this.transition(m, r, 'cancelled', { reason }, principal);
      return r;
    });
    await this.notify(row);
    return row;
  }

  async comment(principal: PrincipalSnapshot, id: string, body: string): Promise<void> {
    await this.get(principal, id); // the same visibility as reading it
    await this.ds.transaction(async (m) => {
      const commentId = randomUUID();
      await m.insert(PendingActionCommentEntity, {
        id: commentId,
        actionId: id,
        orgId: principal.orgId,
        authorUserId: principal.userId,
        body,
      });
      await this.outbox.append(m, {
        orgId: principal.orgId,
        action: 'approvals.action.commented',
        outcome: 'success',
        actor: this.actorOf(PendingActionsService.proposerOf(principal)),
        target: { type: 'pending_action', id },
        details: { commentId, length: body.length },
      });
    });
  }

  /**
   * Moves a locked row to `to` and writes its audit event in the caller's transaction. The guard
   * `state = <from>` and the database trigger make a skipped or reverted state impossible.
   */
  async transition(
    m: EntityManager,
    row: PendingActionEntity,
    to: PendingActionState,
    details: Record<string, unknown>,
    actor?: PrincipalSnapshot,
    outcome?: PendingActionEntity['outcome'],
  ): Promise<void> {
    if (!canTransition(row.state, to))
      throw new CustodianException(ErrorCode.Conflict, `The action is already ${row.state}`, { state: row.state });
    const from = row.state;
    const [, affected] = (await m.query(
      `UPDATE pending_action SET state = $3, outcome = COALESCE($4::jsonb, outcome), updated_at = now() WHERE id = $1 AND state = $2`,
      [row.id, from, to, outcome === undefined ? null : JSON.stringify(outcome)],
    )) as [unknown, number];
    if (affected !== 1) throw new CustodianException(ErrorCode.Conflict, 'The action changed concurrently');
    row.state = to;
    if (outcome !== undefined) row.outcome = outcome;
    await this.auditTransition(m, row, from, to, details, actor);
  }

  /**
   * The same moves as `transition` for many locked rows in one UPDATE (bulk decisions and applies):
   * each row still guarded by its own `state = <from>`, each with its own audit event.
   */
  async transitionMany(
    m: EntityManager,
    moves: Array<{
      row: PendingActionEntity;
      to: PendingActionState;
      details: Record<string, unknown>;
      outcome?: PendingActionEntity['outcome'];
    }>,
    actor?: PrincipalSnapshot,
  ): Promise<void> {
    if (moves.length === 0) return;
    for (const { row, to } of moves)
      if (!canTransition(row.state, to))
        throw new CustodianException(ErrorCode.Conflict, `The action is already ${row.state}`, { state: row.state });
    const [, affected] = (await m.query(
      `UPDATE pending_action p SET state = x.to_state, outcome = COALESCE(x.outcome, p.outcome), updated_at = now()
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[]) AS x(id, from_state, to_state, outcome)
        WHERE p.id = x.id AND p.state = x.from_state`,
      [
        moves.map((mv) => mv.row.id),
        moves.map((mv) => mv.row.state),
        moves.map((mv) => mv.to),
        moves.map((mv) => (mv.outcome === undefined ? null : JSON.stringify(mv.outcome))),
      ],
    )) as [unknown, number];
    if (affected !== moves.length) throw new CustodianException(ErrorCode.Conflict, 'The action changed concurrently');
    const events = moves.map(({ row, to, details, outcome }) => {
      const from = row.state;
      row.state = to;
      if (outcome !== undefined) row.outcome = outcome;
      return this.outbox.prepare(this.transitionEvent(row, from, to, details, actor));
    });
    // The moves' audit events in one statement (each its own event, as `transition` writes it).
    await m.query(`INSERT INTO outbox (id, subject, payload) SELECT * FROM unnest($1::uuid[], $2::text[], $3::jsonb[])`, [
      events.map((e) => e.id),
      events.map(() => AuditEventRecorded.subject),
      events.map((e) => JSON.stringify(e)),
    ]);
    this.outbox.appended();
  }

  private async auditTransition(
    m: EntityManager,
    row: PendingActionEntity,
    from: PendingActionState,
    to: PendingActionState,
    details: Record<string, unknown>,
    actor?: PrincipalSnapshot,
  ): Promise<void> {
    await this.outbox.append(m, this.transitionEvent(row, from, to, details, actor));
  }

  private transitionEvent(
    row: PendingActionEntity,
    from: PendingActionState,
    to: PendingActionState,
    details: Record<string, unknown>,
    actor?: PrincipalSnapshot,
  ): AuditEventInput {
    const failed = to === 'stale' || to === 'forbidden' || to === 'failed';
    return {
      orgId: row.orgId,
      action: auditActionFor(to),
      outcome: failed ? (to === 'forbidden' ? 'denied' : 'failure') : 'success',
      ...(actor ? { actor: this.actorOf(PendingActionsService.proposerOf(actor)) } : {}),
      target: { type: 'pending_action', id: row.id },
      details: { from, to, ...details, ...(failed ? { reason: to } : {}), ...(to === 'approved' ? { final: true } : {}) },
    };
  }

  /** After commit: tell listeners (console, agent, webhooks). Best effort; the audit event is the record. */
  async notify(row: PendingActionEntity): Promise<void> {
    await this.bus
      .publish(
        PendingActionChanged,
        { orgId: row.orgId, id: row.id, state: row.state, revision: row.revision },
        {
          messageId: `${row.id}:${row.state}:${row.revision}`,
        },
      )
      .catch(() => undefined);
  }

  /**
   * What this reader may see of the target; a metadata or permission change has no record (its
   * reviewers need the change's capability).
   */
  private async review(principal: PrincipalSnapshot, row: PendingActionEntity): Promise<ResponseOf<typeof ReviewRecord>> {
    if (row.kind === 'metadata.change' || row.kind === 'permission.change') return { outcome: 'ok', readableFields: [] };
    return this.bus.request(ReviewRecord, {
      reviewer: { userId: principal.userId, orgId: principal.orgId },
      object: row.objectName,
      ...(row.kind !== 'record.create' && row.recordId ? { recordId: row.recordId } : {}),
    });
  }

  /**
   * A permission change's impact as this reader may see it: a field the reader cannot read keeps
   * its level change but loses its name (listed under `hiddenFields`), as a record diff shows such
   * a field as "changed, hidden". Readable fields come from objects, per object, for this reader.
   */
  private async impactFor(principal: PrincipalSnapshot, impact: PermissionImpact): Promise<Record<string, unknown>> {
    const readable = new Map<string, ReadonlySet<string>>();
    for (const object of new Set(impact.users.flatMap((u) => Object.keys(u.objects)))) {
      const r = await this.bus.request(ReviewRecord, { reviewer: { userId: principal.userId, orgId: principal.orgId }, object });
      readable.set(object, new Set(r.outcome === 'ok' ? r.readableFields : []));
    }
    const users = impact.users.map((u) => ({
      ...u,
      objects: Object.fromEntries(
        Object.entries(u.objects).map(([object, o]) => {
          const fields: typeof o.fields = {};
          const hiddenFields: Array<(typeof o.fields)[string]> = [];
          for (const [name, level] of Object.entries(o.fields)) {
            if (readable.get(object)?.has(name)) fields[name] = level;
            else hiddenFields.push(level);
          }
          return [object, { ...o, fields, ...(hiddenFields.length > 0 ? { hiddenFields } : {}) }];
        }),
      ),
    }));
    return { ...impact, users };
  }

  actorOf(p: Proposer): AuditEvent['actor'] {
    return {
      userId: p.userId,
      ...(p.sessionId ? { sessionId: p.sessionId } : {}),
      ...(p.apiKeyId ? { apiKeyId: p.apiKeyId } : {}),
      ...(p.agent ? { agent: { clientId: p.agent.clientId, name: p.agent.name } } : {}),
    };
  }

  /** Audits refused decisions (`authz.denied`, layer approval) in one transaction, as `deny` does one by one. */
  async auditRefusals(
    principal: PrincipalSnapshot,
    refusals: Array<{ id: string; reason: string; details?: Record<string, unknown> }>,
  ): Promise<void> {
    if (refusals.length === 0) return;
    await this.ds
      .transaction(async (m) => {
        for (const r of refusals)
          await this.outbox.append(m, {
            orgId: principal.orgId,
            action: 'authz.denied',
            outcome: 'denied',
            actor: this.actorOf(PendingActionsService.proposerOf(principal)),
            target: { type: 'pending_action', id: r.id },
            details: { reason: r.reason, layer: 'approval', ...(r.details ?? {}) },
          });
      })
      .catch(() => undefined);
  }

  /** Refuses and audits; `hideAs404` answers as if the action did not exist. */
  private async deny(
    principal: PrincipalSnapshot,
    row: PendingActionEntity,
    reason: string,
    message: string,
    details?: Record<string, unknown>,
    _capability = false,
    hideAs404 = false,
  ): Promise<never> {
    await this.ds
      .transaction((m) =>
        this.outbox.append(m, {
          orgId: principal.orgId,
          action: 'authz.denied',
          outcome: 'denied',
          actor: this.actorOf(PendingActionsService.proposerOf(principal)),
          target: { type: 'pending_action', id: row.id },
          details: { reason, layer: 'approval', ...(details ?? {}) },
        }),
      )
      .catch(() => undefined);
    if (hideAs404) throw CustodianException.notFound('Pending action not found');
    throw CustodianException.forbidden(message, { reason, ...(details ?? {}) });
  }
}

function filterDiff(diff: Record<string, { from: unknown; to: unknown }>, readable: ReadonlySet<string>): FieldDiff {
  const out: FieldDiff = {};
  for (const [field, change] of Object.entries(diff)) out[field] = readable.has(field) ? change : { hidden: true };
  return out;
}
