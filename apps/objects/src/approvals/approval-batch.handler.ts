import { createHash } from 'node:crypto';
import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import {
  ApplyRecordOperations,
  GetPrincipalSnapshot,
  ReviewRecords,
  type RecordOperationResult,
  type RequestOf,
  type Requester,
  type ResponseOf,
} from '@custodian/contracts';
import { BUS, CustodianException, OutboxWriter, SERVICE_DATA_SOURCE, canonicalJson, requestContext, type Bus } from '@custodian/platform';
import { isPolicyError, sqlOfPlan } from '@custodian/policy';
import type { DataSource, EntityManager } from 'typeorm';
import { REQUESTER_INACTIVE, asRequester, refusalOutcome } from '../decision/as-requester';
import { recordTable } from '../metadata/org-tables';
import { RecordOperationsBusHandlers } from '../records/record-operations.handler';
import { RecordQueryService } from '../records/record-query.service';
import { RecordWriteService, type WriteResult } from '../records/record-write.service';
import { updateMany, type BatchAnswer } from './batch-update';

type Operation = RequestOf<typeof ApplyRecordOperations>['items'][number];
type ReviewAnswer = ResponseOf<typeof ReviewRecords>['results'][number];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Thrown to roll a batch back: one of its statements failed, so its transaction is no longer usable. */
class BatchAborted extends Error {
  constructor(cause: unknown) {
    super('batch aborted', { cause });
  }
}

/** The same request hash objects.record.apply stores with its receipt, so either path recognises the other's receipt. */
function requestHash(item: Operation): string {
  return createHash('sha256')
    .update(canonicalJson({ ...item, idempotencyKey: undefined }))
    .digest('hex');
}

/**
 * Approvals' bulk decisions in few round trips (docs/approvals.md, Performance):
 *  - `objects.record.review-many`: can this reviewer read these targets now? One principal from
 *    identity, one decision per object, one statement per object (`id = ANY(…)` AND the read row
 *    filter) — the same rule as objects.record.review, which answers not_found for a record the
 *    reviewer cannot read.
 *  - `objects.record.apply-many`: approved operations, each applied as objects.record.apply would
 *    apply it on its own: the requester's principal rebuilt by identity now (P1), the expected
 *    version (P2), the receipt keyed by the action (P3), the stored values (P5), its own audit
 *    event. What is batched: the requester's principal is built once per distinct requester, its
 *    decision once per object, the receipts are looked up in one statement, and the updates of one
 *    requester share one transaction in which batch-update.ts applies each object's updates with a
 *    fixed number of statements (rows locked with the read filter, the edit filter, one UPDATE per
 *    set of fields, one INSERT of the audit events, one of the receipts); an item on a record an
 *    earlier item names, or one that sets a lookup, goes through RecordWriteService.update in the
 *    same transaction. A failed statement rolls that transaction back and its items are applied
 *    one by one through objects.record.apply's own code instead. Creates, deletes and actions
 *    always take that one-by-one path.
 */
@Injectable()
export class ApprovalBatchBusHandlers implements OnApplicationBootstrap {
  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(RecordQueryService) private readonly queries: RecordQueryService,
    @Inject(RecordWriteService) private readonly records: RecordWriteService,
    @Inject(RecordOperationsBusHandlers) private readonly single: RecordOperationsBusHandlers,
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.bus.handle(ReviewRecords, (req) => this.review(req));
    await this.bus.handle(ApplyRecordOperations, async (req) => ({ results: await this.apply(req.items) }));
  }

  async review(req: RequestOf<typeof ReviewRecords>): Promise<ResponseOf<typeof ReviewRecords>> {
    const results: ReviewAnswer[] = req.items.map(() => ({ outcome: 'not_found' }));
    let principal;
    try {
      principal = await this.bus.request(GetPrincipalSnapshot, { userId: req.reviewer.userId, orgId: req.reviewer.orgId });
    } catch (error) {
      if (error instanceof CustodianException && (error.code === 'unauthenticated' || error.code === 'not_found')) return { results };
      throw error;
    }
    const byObject = new Map<string, number[]>();
    req.items.forEach((item, i) => byObject.set(item.object, [...(byObject.get(item.object) ?? []), i]));
    const ctx = { requestId: requestContext.requestId() ?? `bus-${Date.now()}`, principal };
    await requestContext.run(ctx, async () => {
      for (const [object, indexes] of byObject) {
        let decision;
        try {
          ({ decision } = await this.queries.context(principal, object));
        } catch (error) {
          if (isPolicyError(error) || (error instanceof CustodianException && (error.code === 'not_found' || error.code === 'forbidden')))
            continue;
          throw error;
        }
        if (decision.readableFields(object).length === 0) continue;
        const ids: string[] = [];
        for (const i of indexes) {
          const id = req.items[i].recordId;
          if (id === undefined) results[i] = { outcome: 'ok' };
          else if (UUID.test(id)) ids.push(id);
        }
        if (ids.length === 0) continue;
        const filter = decision.rowFilter('read', object, { alias: 't', paramOffset: 1 });
        if (filter.plan.kind === 'never') continue;
        const rows = (await this.ds.query(
          `SELECT t.id FROM ${recordTable(principal.orgId, object)} t WHERE t.id = ANY($1::uuid[]) AND ${sqlOfPlan(filter.plan)}`,
          [ids, ...filter.params],
        )) as Array<{ id: string }>;
        const readable = new Set(rows.map((r) => r.id));
        for (const i of indexes) {
          const id = req.items[i].recordId;
          if (id !== undefined && readable.has(id)) results[i] = { outcome: 'ok' };
        }
      }
    });
    return { results };
  }

  async apply(items: Operation[]): Promise<RecordOperationResult[]> {
    const results = new Array<RecordOperationResult | undefined>(items.length);
    const groups = new Map<string, number[]>();
    items.forEach((item, i) => {
      const key = canonicalJson(item.requester);
      groups.set(key, [...(groups.get(key) ?? []), i]);
    });
    for (const indexes of groups.values()) {
      const keys = new Set<string>();
      const batch: number[] = [];
      for (const i of indexes) {
        const item = items[i];
        const batchable =
          item.operation === 'update' &&
          item.action === undefined &&
          item.recordId !== undefined &&
          item.expectedVersion !== undefined &&
          item.idempotencyKey !== undefined &&
          !keys.has(item.idempotencyKey);
        if (batchable) {
          keys.add(item.idempotencyKey!);
          batch.push(i);
        }
      }
      if (batch.length > 0) await this.applyUpdates(items[batch[0]].requester, batch, items, results);
      for (const i of indexes) if (!results[i]) results[i] = await this.single.run(items[i], false);
    }
    return results as RecordOperationResult[];
  }

  /** Updates of one requester: one principal, one receipt lookup, one transaction. */
  private async applyUpdates(
    requester: Requester,
    indexes: number[],
    items: Operation[],
    results: Array<RecordOperationResult | undefined>,
  ): Promise<void> {
    const answer = await asRequester(this.bus, requester, async (principal) => {
      const hashes = new Map(indexes.map((i) => [i, requestHash(items[i])]));
      const receipts = (await this.ds.query(
        'SELECT key, request_hash, status, response FROM idempotency_key WHERE org_id = $1 AND user_id = $2 AND key = ANY($3::text[])',
        [requester.orgId, requester.userId, indexes.map((i) => items[i].idempotencyKey)],
      )) as Array<{ key: string; request_hash: string; response: { id: string; version: number | null; previousVersion: number | null } }>;
      const prior = new Map(receipts.map((r) => [r.key, r]));
      const fresh: number[] = [];
      for (const i of indexes) {
        const receipt = prior.get(items[i].idempotencyKey!);
        if (!receipt) fresh.push(i);
        else if (receipt.request_hash !== hashes.get(i))
          results[i] = { outcome: 'conflict', code: 'conflict', message: 'This idempotency key was used with another operation' };
        else
          results[i] = {
            outcome: 'applied',
            recordId: receipt.response.id,
            version: receipt.response.version ?? receipt.response.previousVersion ?? null,
            diff: {},
          };
      }
      if (fresh.length === 0) return;
      const answers = new Map<number, RecordOperationResult>();
      // One decision per object for this requester (rebuilt now, P1); an object they may no longer see refuses its items.
      const byObject = new Map<string, number[]>();
      for (const i of fresh) byObject.set(items[i].object, [...(byObject.get(items[i].object) ?? []), i]);
      const contexts = new Map<string, Awaited<ReturnType<RecordQueryService['context']>>>();
      for (const [object, group] of byObject) {
        try {
          contexts.set(object, await this.queries.context(principal, object));
        } catch (error) {
          const refusal = refusalOutcome(error);
          if (!refusal) throw error;
          for (const i of group) results[i] = refusal;
        }
      }
      try {
        await this.ds.transaction(async (m) => {
          const single: number[] = [];
          for (const [object, group] of byObject) {
            const ctx = contexts.get(object);
            if (!ctx) continue;
            let batch: BatchAnswer[];
            try {
              batch = await updateMany(
                m,
                this.outbox,
                principal,
                ctx,
                object,
                group.map((i) => ({
                  recordId: items[i].recordId!,
                  values: items[i].values,
                  expectedVersion: items[i].expectedVersion!,
                  idempotencyKey: items[i].idempotencyKey!,
                  hash: hashes.get(i)!,
                })),
              );
            } catch (error) {
              throw new BatchAborted(error);
            }
            group.forEach((i, k) => (batch[k] === 'single' ? single.push(i) : answers.set(i, batch[k] as RecordOperationResult)));
          }
          // After the batched ones, in request order: a second item on the same record, one that sets a lookup.
          for (const i of single.sort((a, b) => a - b)) answers.set(i, await this.updateOne(m, principal, items[i], hashes.get(i)!));
        });
      } catch (error) {
        if (!(error instanceof BatchAborted)) throw error;
        // Nothing of the batch was written: each item again on its own, through objects.record.apply's code.
        for (const i of fresh) results[i] = await this.single.run(items[i], false);
        return;
      }
      for (const [i, result] of answers) results[i] = result;
    });
    if (answer === REQUESTER_INACTIVE) for (const i of indexes) results[i] = { ...REQUESTER_INACTIVE };
  }

  /** One update in the batch's transaction, with its receipt; a refusal that leaves the transaction unusable aborts the batch. */
  private async updateOne(
    m: EntityManager,
    principal: Parameters<RecordWriteService['update']>[0],
    item: Operation,
    hash: string,
  ): Promise<RecordOperationResult> {
    const receipt = async (tx: EntityManager, result: WriteResult): Promise<void> => {
      const response = {
        id: item.recordId,
        version: typeof result.record.version === 'number' ? result.record.version : null,
        previousVersion: result.previousVersion ?? null,
      };
      await tx.query(
        'INSERT INTO idempotency_key (org_id, user_id, key, request_hash, status, response) VALUES ($1, $2, $3, $4, $5, $6::jsonb)',
        [item.requester.orgId, item.requester.userId, item.idempotencyKey, hash, result.status, JSON.stringify(response)],
      );
    };
    let result: WriteResult;
    try {
      result = await this.records.update(principal, item.object, item.recordId!, item.values ?? {}, `"${item.expectedVersion}"`, {
        manager: m,
        beforeCommit: receipt,
      });
    } catch (error) {
      const answer = refusalOutcome(error);
      // A conflict can come from a failed statement (a unique value): the transaction may be unusable.
      if (!answer || answer.outcome === 'conflict') throw new BatchAborted(error);
      return answer;
    }
    return {
      outcome: 'applied',
      ...(typeof result.record.id === 'string' ? { recordId: result.record.id } : {}),
      version: typeof result.record.version === 'number' ? result.record.version : (result.previousVersion ?? null),
      diff: result.diff ?? {},
    };
  }
}
