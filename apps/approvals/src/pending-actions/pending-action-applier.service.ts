import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import {
  ApplyIdentityPermissionChange,
  ApplyMetadataChange,
  ApplyRecordOperation,
  ApplyRecordOperations,
  ApplySharingRuleChange,
  type PermissionChange,
  type RecordOperationResult,
  type RequestOf,
} from '@custodian/contracts';
import { BUS, CONFIG, SERVICE_DATA_SOURCE, type Bus, type CustodianConfig } from '@custodian/platform';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import { PendingActionEntity } from '../entities/pending-action.entity';
import { PendingActionsService, RECORD_OPERATION } from './pending-actions.service';
import { LOGGER } from '@custodian/platform';

/**
 * Applies approved actions: objects re-checks the requester's permission now (→ forbidden), the
 * record's version (→ stale) and applies the approved values exactly (the stored ones, never a
 * new request's). The action's id is the apply's idempotency key, so a retry after a crash
 * between objects' commit and ours answers the first result instead of writing twice; the
 * `state = 'approved'` guard makes the state change happen once under racing appliers.
 * A sweep retries approved actions a crash left behind and expires pending ones past their time.
 */
@Injectable()
export class PendingActionApplier implements OnApplicationBootstrap, OnModuleDestroy {
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private stopped = false;

  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(BUS) private readonly bus: Bus,
    @Inject(CONFIG) private readonly config: CustodianConfig,
    @Inject(PendingActionsService) private readonly actions: PendingActionsService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    const every = this.config.approvals.sweepIntervalMs;
    if (every > 0) {
      this.timer = setInterval(() => void this.sweep(), every);
      this.timer.unref();
    }
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.sweeping;
  }

  /** One pass: expire what is due, retry approved actions left behind. Concurrent calls share a pass. */
  sweep(): Promise<void> {
    this.sweeping ??= (async () => {
      try {
        await this.expireDue();
        const orphans = (await this.ds.query(
          `SELECT id FROM pending_action WHERE state = 'approved' AND updated_at < now() - ($1::int * interval '1 millisecond')
            ORDER BY updated_at LIMIT 100`,
          [this.config.approvals.applyRetryAfterMs],
        )) as Array<{ id: string }>;
        for (const { id } of orphans) {
          if (this.stopped) break;
          await this.apply(id);
        }
      } catch (error) {
        this.logger.warn({ err: error }, 'approvals sweep failed; it runs again');
      } finally {
        this.sweeping = undefined;
      }
    })();
    return this.sweeping;
  }

  async expireDue(): Promise<number> {
    let expired = 0;
    for (;;) {
      const rows = await this.ds.transaction(async (m) => {
        const due = await m
          .createQueryBuilder(PendingActionEntity, 'a')
          .setLock('pessimistic_write')
          .setOnLocked('skip_locked')
          .where(`a.state = 'pending' AND a.expires_at <= now()`)
          .orderBy('a.expires_at')
          .limit(100)
          .getMany();
        for (const row of due) await this.actions.transition(m, row, 'expired', { reason: 'expired' });
        return due;
      });
      for (const row of rows) await this.actions.notify(row);
      expired += rows.length;
      if (rows.length < 100) return expired;
    }
  }

  /**
   * Applies one approved action and records the final state, holding the action's row lock across
   * objects' apply so racing appliers serialise. Returns the row as it ends up (as found when it
   * is no longer approved), or undefined when the sweep finds it locked by another applier.
   */
  async apply(id: string, { wait = false } = {}): Promise<PendingActionEntity | undefined> {
    const done = await this.ds.transaction(async (m) => {
      const query = m.createQueryBuilder(PendingActionEntity, 'a').setLock('pessimistic_write').where('a.id = :id', { id });
      // The approver waits for a reviewer's short lock and then answers the state it finds; the sweep skips busy rows.
      const row = await (wait ? query : query.setOnLocked('skip_locked')).getOne();
      if (!row || row.state !== 'approved') return row ?? undefined;
      await m.query('UPDATE pending_action SET apply_attempts = apply_attempts + 1, updated_at = now() WHERE id = $1', [id]);
      let result: Pick<RecordOperationResult, 'outcome' | 'code' | 'message' | 'recordId'> & { version?: number | null };
      try {
        result = await this.send(row);
        if (STALL_AFTER_APPLY && result.outcome === 'applied') await this.stall(id);
      } catch (error) {
        // No answer (objects unreachable, timeout): the action stays approved and the sweep retries.
        this.logger.warn({ err: error, pendingAction: id }, 'apply did not complete; it will be retried');
        return row;
      }
      const to = finalState(result);
      const outcome = {
        ...(result.code ? { code: result.code } : {}),
        ...(result.message ? { message: result.message } : {}),
        ...(result.version !== undefined ? { version: result.version } : {}),
      };
      if (to === 'applied' && result.recordId && !row.recordId) {
        await m.query('UPDATE pending_action SET record_id = $2 WHERE id = $1', [id, result.recordId]);
        row.recordId = result.recordId;
      }
      await this.actions.transition(
        m,
        row,
        to,
        { ...outcome, ...(result.recordId ? { recordId: result.recordId } : {}) },
        undefined,
        outcome,
      );
      return row;
    });
    if (done && done.state !== 'approved') await this.actions.notify(done);
    return done;
  }

  /**
   * Test-only fault injection (docs/operations.md): objects has committed the change and this
   * transaction has not, which is the window a crash test must kill the process in; never resolves.
   */
  private stall(id: string): Promise<never> {
    this.logger.error({ pendingAction: id }, 'fault injection: stalled after objects applied, before approvals commits');
    return new Promise<never>(() => undefined);
  }

  /** The approved change, exactly as approved, to objects under the requester's re-checked permission. */
  private send(row: PendingActionEntity) {
    const requester = {
      userId: row.requester.userId,
      orgId: row.requester.orgId,
      ...(row.requester.agent ? { agent: row.requester.agent } : {}),
    };
    const idempotencyKey = `pending-action:${row.id}`;
    if (row.kind === 'permission.change') {
      // The owner of the target applies it: identity for sets and roles, objects for sharing rules.
      const { change, version } = row.values as { change: PermissionChange; version: string };
      const contract = change.type === 'sharing_rule.upsert' ? ApplySharingRuleChange : ApplyIdentityPermissionChange;
      return this.bus
        .request(contract, { requester, change, expectedVersion: version, idempotencyKey })
        .then((r) => ({ outcome: r.outcome, ...(r.code ? { code: r.code } : {}), ...(r.message ? { message: r.message } : {}) }));
    }
    if (row.kind === 'metadata.change')
      return this.bus.request(ApplyMetadataChange, {
        requester,
        object: row.objectName,
        definition: row.values,
        expectedVersion: row.expectedVersion ?? 1,
        idempotencyKey,
      });
    return this.bus.request(ApplyRecordOperation, recordOperationOf(row));
  }

  /**
   * Applies many approved record actions (a bulk approval's) with one request to objects
   * (objects.record.apply-many), which applies each exactly as objects.record.apply would. As in
   * `apply`, the rows stay locked while objects writes, so other appliers wait; an action no longer
   * approved is answered as found; no answer (objects unreachable, timeout) leaves them approved
   * for the sweep, whose retry then finds objects' receipts. Returns the rows as they end up.
   */
  async applyMany(ids: string[]): Promise<PendingActionEntity[]> {
    if (ids.length === 0) return [];
    const due: PendingActionEntity[] = [];
    const rows = await this.ds.transaction(async (m) => {
      const locked = await m
        .createQueryBuilder(PendingActionEntity, 'a')
        .setLock('pessimistic_write')
        .where('a.id IN (:...ids)', { ids })
        .orderBy('a.id')
        .getMany();
      // Locked in id order (no deadlock with another bulk call), applied in the caller's order (the earlier item writes first).
      const order = new Map(ids.map((id, i) => [id, i]));
      due.push(...locked.filter((r) => r.state === 'approved').sort((a, b) => order.get(a.id)! - order.get(b.id)!));
      if (due.length === 0) return locked;
      await m.query('UPDATE pending_action SET apply_attempts = apply_attempts + 1, updated_at = now() WHERE id = ANY($1::uuid[])', [
        due.map((r) => r.id),
      ]);
      let results: RecordOperationResult[];
      try {
        ({ results } = await this.bus.request(ApplyRecordOperations, { items: due.map(recordOperationOf) }));
        if (results.length !== due.length) throw new Error(`objects answered ${results.length} results for ${due.length} applies`);
        if (STALL_AFTER_APPLY && results.some((r) => r.outcome === 'applied')) await this.stall(due[0].id);
      } catch (error) {
        this.logger.warn({ err: error, pendingActions: due.length }, 'bulk apply did not complete; it will be retried');
        due.length = 0;
        return locked;
      }
      await this.actions.transitionMany(
        m,
        due.map((row, i) => {
          const result = results[i];
          const outcome = {
            ...(result.code ? { code: result.code } : {}),
            ...(result.message ? { message: result.message } : {}),
            ...(result.version !== undefined ? { version: result.version } : {}),
          };
          return {
            row,
            to: finalState(result),
            details: { ...outcome, ...(result.recordId ? { recordId: result.recordId } : {}) },
            outcome,
          };
        }),
      );
      return locked;
    });
    await Promise.all(due.map((row) => this.actions.notify(row)));
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.map((id) => byId.get(id)).filter((r): r is PendingActionEntity => r !== undefined);
  }
}

/** Whether `applyMany` applies this kind (record updates; everything else is applied one by one). */
export function appliesInBulk(row: PendingActionEntity): boolean {
  return row.kind === 'record.update' && row.actionName === null && row.recordId !== null && row.expectedVersion !== null;
}

/** The approved record operation, exactly as approved, for objects (the requester re-checked there). */
function recordOperationOf(row: PendingActionEntity): RequestOf<typeof ApplyRecordOperation> {
  return {
    requester: {
      userId: row.requester.userId,
      orgId: row.requester.orgId,
      ...(row.requester.agent ? { agent: row.requester.agent } : {}),
    },
    operation: RECORD_OPERATION[row.kind],
    object: row.objectName,
    ...(row.recordId ? { recordId: row.recordId } : {}),
    ...(row.kind !== 'record.delete' ? { values: row.values } : {}),
    ...(row.actionName ? { action: row.actionName } : {}),
    ...(row.expectedVersion !== null ? { expectedVersion: row.expectedVersion } : {}),
    idempotencyKey: `pending-action:${row.id}`,
  };
}

/** CUSTODIAN_FAULT_STALL_AFTER_APPLY=1 is for crash tests only; unset (the default) it does nothing. */
const STALL_AFTER_APPLY = process.env.CUSTODIAN_FAULT_STALL_AFTER_APPLY === '1';

/** Objects' answer as the action's final state. */
function finalState(result: Pick<RecordOperationResult, 'outcome'>): 'applied' | 'stale' | 'forbidden' | 'failed' {
  switch (result.outcome) {
    case 'applied':
      return 'applied';
    case 'stale':
      return 'stale';
    case 'forbidden':
    case 'not_found':
      return 'forbidden';
    default:
      return 'failed';
  }
}
