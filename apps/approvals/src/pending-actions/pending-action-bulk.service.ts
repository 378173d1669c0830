import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ERROR_HTTP_STATUS, ErrorCode, ReviewRecords, type PrincipalSnapshot } from '@custodian/contracts';
import { BUS, CustodianException, SERVICE_DATA_SOURCE, type Bus } from '@custodian/platform';
import type { Capability } from '@custodian/policy';
import { In, type DataSource } from 'typeorm';
import { PendingActionDecisionEntity } from '../entities/pending-action-decision.entity';
import { PendingActionEntity } from '../entities/pending-action.entity';
import { holdsAny } from '../policies/approval-policies.service';
import { PendingActionApplier, appliesInBulk } from './pending-action-applier.service';
import { PendingActionsService } from './pending-actions.service';

export interface BulkItem {
  id: string;
  decision: 'approve' | 'reject';
  revision?: number;
  reason?: string;
}

export type BulkResult =
  | {
      id: string;
      status: 200;
      state: PendingActionEntity['state'];
      revision: number;
      recordId: string | null;
      outcome: PendingActionEntity['outcome'];
    }
  | { id: string; status: number; code: string; message: string };

/** Items decided in one transaction (and applied with one request to objects). */
export const BULK_CHUNK = 200;

type Indexed = BulkItem & { index: number };

export const stateOf = (row: PendingActionEntity) => ({
  id: row.id,
  state: row.state,
  revision: row.revision,
  recordId: row.recordId,
  outcome: row.outcome,
});

function errorResult(id: string, error: CustodianException): BulkResult {
  return { id, status: ERROR_HTTP_STATUS[error.code] ?? 400, code: error.code, message: error.message };
}

/**
 * `POST approvals/bulk`: every item is checked on its own, exactly as its single-item route checks
 * it (existence, an agent never decides, the approver capability, separation of duties, read access
 * to the target now; then, under the row lock, the state, the revision named, expiry, one decision
 * per human) and answers for itself. What is shared is the work around the checks: per chunk of
 * BULK_CHUNK items, one read of the actions, one reviewer principal and one statement per object for
 * the read check (objects.record.review-many), one decision transaction (rows locked in id order,
 * decisions and moves written together, one audit event per move), and one apply request for the
 * approved record updates (objects.record.apply-many: each re-checked under its requester, its
 * version, its receipt, its audit event). A chunk whose transaction fails as a whole is decided
 * item by item through the single-item path instead; an id named twice is decided again after the
 * others, as a second request would be.
 */
@Injectable()
export class PendingActionBulk {
  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(BUS) private readonly bus: Bus,
    @Inject(PendingActionsService) private readonly actions: PendingActionsService,
    @Inject(PendingActionApplier) private readonly applier: PendingActionApplier,
  ) {}

  async decide(principal: PrincipalSnapshot, items: BulkItem[]): Promise<BulkResult[]> {
    const results = new Array<BulkResult | undefined>(items.length);
    const first: Indexed[] = [];
    const again: Indexed[] = [];
    const seen = new Set<string>();
    items.forEach((item, index) => {
      if (item.decision === 'reject' && !item.reason)
        results[index] = errorResult(
          item.id,
          new CustodianException(ErrorCode.ValidationFailed, 'A rejection needs a reason', {
            issues: [{ path: '/reason', message: 'required' }],
          }),
        );
      else if (seen.has(item.id)) again.push({ ...item, index });
      else {
        seen.add(item.id);
        first.push({ ...item, index });
      }
    });
    for (let i = 0; i < first.length; i += BULK_CHUNK) await this.decideChunk(principal, first.slice(i, i + BULK_CHUNK), results);
    for (const item of again) results[item.index] = await this.one(principal, item);
    return results as BulkResult[];
  }

  /** One item through the single-item path (approve or reject, then apply), as POST approvals/:id/approve does it. */
  async one(principal: PrincipalSnapshot, item: BulkItem): Promise<BulkResult> {
    try {
      const row =
        item.decision === 'approve'
          ? await this.actions.approve(principal, item.id, item.revision)
          : await this.actions.reject(principal, item.id, item.revision, item.reason!);
      const final = row.state === 'approved' ? ((await this.applier.apply(row.id, { wait: true })) ?? row) : row;
      return { ...stateOf(final), status: 200 };
    } catch (error) {
      if (!(error instanceof CustodianException)) throw error;
      return errorResult(item.id, error);
    }
  }

  private async decideChunk(principal: PrincipalSnapshot, chunk: Indexed[], results: Array<BulkResult | undefined>): Promise<void> {
    const peek = new Map(
      (await this.ds.getRepository(PendingActionEntity).find({ where: { id: In(chunk.map((c) => c.id)), orgId: principal.orgId } })).map(
        (r) => [r.id, r],
      ),
    );
    // The checks before the lock, in the order PendingActionsService.decide makes them.
    const refusals: Array<{ item: Indexed; reason: string; details?: Record<string, unknown>; error: CustodianException }> = [];
    const readCheck: Array<{ item: Indexed; row: PendingActionEntity }> = [];
    for (const item of chunk) {
      const row = peek.get(item.id);
      if (!row) results[item.index] = errorResult(item.id, CustodianException.notFound('Pending action not found'));
      else if (principal.agent) {
        const reason = 'agent_cannot_review';
        refusals.push({ item, reason, error: CustodianException.forbidden('An agent cannot approve or reject changes', { reason }) });
      } else if (!holdsAny(principal, [row.approverCapability as Capability])) {
        const details = { missing: [row.approverCapability] };
        const reason = 'missing_capability';
        refusals.push({ item, reason, details, error: CustodianException.forbidden('Missing capability', { reason, ...details }) });
      } else if (row.requesterUserId === principal.userId) {
        const reason = 'self_approval';
        const message = 'The requester cannot decide their own change (separation of duties)';
        refusals.push({ item, reason, error: CustodianException.forbidden(message, { reason }) });
      } else readCheck.push({ item, row });
    }
    // The reviewer must be able to read each target now: one principal, one statement per object.
    const records = readCheck.filter(({ row }) => row.kind !== 'metadata.change' && row.kind !== 'permission.change');
    const readable = new Set<string>(readCheck.filter((c) => !records.includes(c)).map((c) => c.row.id));
    if (records.length > 0) {
      let answers: Array<{ outcome: 'ok' | 'not_found' }>;
      try {
        ({ results: answers } = await this.bus.request(ReviewRecords, {
          reviewer: { userId: principal.userId, orgId: principal.orgId },
          items: records.map(({ row }) => ({
            object: row.objectName,
            ...(row.kind !== 'record.create' && row.recordId ? { recordId: row.recordId } : {}),
          })),
        }));
      } catch {
        // Objects did not answer the batch: the refusals found so far stand, the rest go one by one (each answers for itself).
        await this.actions.auditRefusals(
          principal,
          refusals.map((r) => ({ id: r.item.id, reason: r.reason, ...(r.details ? { details: r.details } : {}) })),
        );
        for (const r of refusals) results[r.item.index] = errorResult(r.item.id, r.error);
        for (const { item } of readCheck) results[item.index] = await this.one(principal, item);
        return;
      }
      records.forEach(({ row }, i) => {
        if (answers[i]?.outcome === 'ok') readable.add(row.id);
      });
    }
    const candidates: Indexed[] = [];
    for (const { item, row } of readCheck) {
      if (readable.has(row.id)) candidates.push(item);
      else refusals.push({ item, reason: 'target_not_readable', error: CustodianException.notFound('Pending action not found') });
    }
    await this.actions.auditRefusals(
      principal,
      refusals.map((r) => ({ id: r.item.id, reason: r.reason, ...(r.details ? { details: r.details } : {}) })),
    );
    for (const r of refusals) results[r.item.index] = errorResult(r.item.id, r.error);
    if (candidates.length === 0) return;

    let decided: Array<{ item: Indexed; row: PendingActionEntity }>;
    try {
      decided = await this.decideLocked(principal, candidates, results);
    } catch {
      // Nothing of the chunk's decisions was written: each item again on its own, which answers (or throws) for itself.
      for (const item of candidates) results[item.index] = await this.one(principal, item);
      return;
    }
    // Apply what this chunk approved: record updates with one request to objects, anything else one by one.
    const approved = decided.filter(({ row }) => row.state === 'approved');
    const bulk = approved.filter(({ row }) => appliesInBulk(row));
    // If the batch fails as a whole, each approved action is applied on its own below (objects' receipts keep it once).
    const applied = new Map(
      (await this.applier.applyMany(bulk.map(({ row }) => row.id)).catch(() => [] as PendingActionEntity[])).map((r) => [r.id, r]),
    );
    for (const { item, row } of decided) {
      let final = row;
      if (row.state === 'approved') final = applied.get(row.id) ?? (await this.applier.apply(row.id, { wait: true })) ?? row;
      // An approval whose apply did not finish is announced as approved (a finished one announced its final state).
      if (final.state === 'approved') await this.actions.notify(final);
      results[item.index] = { ...stateOf(final), status: 200 };
    }
  }

  /**
   * The decisions of a chunk in one transaction, each item as PendingActionsService.decide's
   * transaction decides it. Refused items get their result here; the decided ones are returned.
   */
  private async decideLocked(
    principal: PrincipalSnapshot,
    items: Indexed[],
    results: Array<BulkResult | undefined>,
  ): Promise<Array<{ item: Indexed; row: PendingActionEntity }>> {
    const { decided, notifyRows } = await this.ds.transaction(async (m) => {
      const ids = items.map((i) => i.id);
      const locked = new Map(
        (
          await m
            .createQueryBuilder(PendingActionEntity, 'a')
            .setLock('pessimistic_write')
            .where('a.id IN (:...ids)', { ids })
            .orderBy('a.id')
            .getMany()
        ).map((r) => [r.id, r]),
      );
      const prior = new Map(
        (
          (await m.query(
            'SELECT action_id, decision FROM pending_action_decision WHERE action_id = ANY($1::uuid[]) AND approver_user_id = $2',
            [ids, principal.userId],
          )) as Array<{ action_id: string; decision: string }>
        ).map((d) => [d.action_id, d.decision]),
      );
      const now = Date.now();
      const expired: PendingActionEntity[] = [];
      const ok: Array<{ item: Indexed; row: PendingActionEntity }> = [];
      for (const item of items) {
        const row = locked.get(item.id);
        let refusal: CustodianException | undefined;
        if (!row) refusal = CustodianException.notFound('Pending action not found');
        else if (row.state !== 'pending')
          refusal = new CustodianException(ErrorCode.Conflict, `The action is already ${row.state}`, { state: row.state });
        else if (item.revision !== undefined && item.revision !== row.revision)
          refusal = new CustodianException(ErrorCode.PreconditionFailed, 'The proposal has changed since you saw it', {
            currentRevision: row.revision,
          });
        else if (row.expiresAt.getTime() <= now) {
          expired.push(row);
          refusal = new CustodianException(ErrorCode.Conflict, 'The action has expired', { state: 'expired' });
        } else if (prior.has(row.id))
          refusal = new CustodianException(ErrorCode.Conflict, 'You have already decided this action', { decision: prior.get(row.id) });
        if (refusal) results[item.index] = errorResult(item.id, refusal);
        else ok.push({ item, row: row! });
      }
      await this.actions.transitionMany(
        m,
        expired.map((row) => ({ row, to: 'expired' as const, details: { reason: 'expired' } })),
      );
      if (ok.length > 0)
        await m.insert(
          PendingActionDecisionEntity,
          ok.map(({ item, row }) => ({
            id: randomUUID(),
            actionId: row.id,
            orgId: row.orgId,
            approverUserId: principal.userId,
            credential: {
              ...(principal.sessionId ? { sessionId: principal.sessionId } : {}),
              ...(principal.apiKeyId ? { apiKeyId: principal.apiKeyId } : {}),
            },
            decision: item.decision,
            reason: item.decision === 'reject' ? item.reason! : null,
            revision: row.revision,
          })),
        );
      const approvals = ok.filter(({ item }) => item.decision === 'approve');
      const counts = new Map(
        approvals.length === 0
          ? []
          : (
              (await m.query(
                `SELECT x.id, (SELECT count(DISTINCT d.approver_user_id) FROM pending_action_decision d
                                WHERE d.action_id = x.id AND d.decision = 'approve' AND d.revision = x.revision
                                  AND d.approver_user_id <> x.requester)::int AS n
                   FROM unnest($1::uuid[], $2::int[], $3::uuid[]) AS x(id, revision, requester)`,
                [
                  approvals.map(({ row }) => row.id),
                  approvals.map(({ row }) => row.revision),
                  approvals.map(({ row }) => row.requesterUserId),
                ],
              )) as Array<{ id: string; n: number }>
            ).map((c) => [c.id, c.n]),
      );
      const moves = [
        ...ok
          .filter(({ item }) => item.decision === 'reject')
          .map(({ item, row }) => ({ row, to: 'rejected' as const, details: { reason: item.reason } })),
        ...approvals
          .filter(({ row }) => (counts.get(row.id) ?? 0) >= row.requiredApprovals)
          .map(({ row }) => ({ row, to: 'approved' as const, details: { approvals: counts.get(row.id) } })),
      ];
      for (const { row } of approvals.filter(({ row }) => (counts.get(row.id) ?? 0) < row.requiredApprovals))
        await this.actions.auditPartialApproval(m, principal, row, counts.get(row.id) ?? 0);
      await this.actions.transitionMany(m, moves, principal);
      return { decided: ok, notifyRows: [...expired, ...ok.map(({ row }) => row)] };
    });
    // Approved rows are announced by their apply (applied, stale, …) or, if that does not finish, by the sweep's.
    await Promise.all(notifyRows.filter((r) => r.state !== 'approved').map((r) => this.actions.notify(r)));
    return decided;
  }
}
