import { createHash } from 'node:crypto';
import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { ApplyRecordOperation, DryRunRecordOperation, type RecordOperationResult, type RequestOf } from '@custodian/contracts';
import { BUS, CustodianException, SERVICE_DATA_SOURCE, canonicalJson, type Bus } from '@custodian/platform';
import type { DataSource, EntityManager } from 'typeorm';
import { ActionsService } from '../actions/actions.service';
import { asRequester, refusalOutcome } from '../decision/as-requester';
import { RecordWriteService, type WriteOptions, type WriteResult } from './record-write.service';

type OperationRequest = RequestOf<typeof ApplyRecordOperation>;

/**
 * Dry-run and apply-with-version over the bus, for approvals (docs/objects.md, "Dry-run and
 * apply-with-version"; docs/approvals.md, "Apply: re-checked, exactly once"). Both re-read the
 * requester's snapshot from identity (user ∩ agent delegation) and run the same code path as REST;
 * a dry-run rolls back at the end, so its decision and diff are exactly what an apply would do now.
 */
@Injectable()
export class RecordOperationsBusHandlers implements OnApplicationBootstrap {
  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(RecordWriteService) private readonly records: RecordWriteService,
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(ActionsService) private readonly actions: ActionsService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.bus.handle(DryRunRecordOperation, (req) => this.run(req, true));
    await this.bus.handle(ApplyRecordOperation, (req) => this.run(req, false));
  }

  async run(request: OperationRequest, dryRun: boolean): Promise<RecordOperationResult> {
    let req = request;
    let delegation = req.requester.agent;
    if (request.action !== undefined) {
      const resolved = await this.resolveAction(request);
      if ('outcome' in resolved) return resolved;
      ({ req, delegation } = resolved);
    }
    try {
      return await asRequester(
        this.bus,
        req.requester,
        async (principal) => {
          const result = await this.execute(req, principal, dryRun);
          return {
            outcome: dryRun ? 'allowed' : 'applied',
            ...(typeof result.record.id === 'string' ? { recordId: result.record.id } : {}),
            version: dryRun
              ? (result.previousVersion ?? null)
              : typeof result.record.version === 'number'
                ? result.record.version
                : (result.previousVersion ?? null),
            diff: result.diff ?? {},
            ...(request.action !== undefined && req.values ? { values: req.values } : {}),
          };
        },
        delegation,
      );
    } catch (error) {
      const answer = refusalOutcome(error);
      if (answer) return answer;
      throw error;
    }
  }

  /**
   * A declared action is an update with the action's values. An agent runs it with `actions:execute`
   * (which lets it write exactly those values, nothing else); an apply that carries the approved
   * values is `stale` when the action's values changed since.
   */
  private async resolveAction(
    req: OperationRequest,
  ): Promise<RecordOperationResult | { req: OperationRequest; delegation: OperationRequest['requester']['agent'] }> {
    if (req.operation !== 'update' || !req.recordId)
      return { outcome: 'invalid', code: 'validation_failed', message: 'An action runs as an update of one record' };
    const action = (await this.actions.list(req.requester.orgId, req.object)).find((a) => a.name === req.action);
    if (!action || action.kind !== 'update')
      return { outcome: 'not_found', code: 'action_not_found', message: 'No such action on this object' };
    const agent = req.requester.agent;
    if (agent && !agent.scopes.includes('actions:execute'))
      return { outcome: 'forbidden', code: 'agent_scope', message: 'Running an action needs the actions:execute scope' };
    if (req.values !== undefined && canonicalJson(req.values) !== canonicalJson(action.set))
      return { outcome: 'stale', code: 'action_changed', message: 'The action has changed since it was approved' };
    const delegation = agent ? { ...agent, scopes: [...new Set([...agent.scopes, 'data:write'])] } : undefined;
    return { req: { ...req, values: { ...action.set } }, delegation };
  }

  /**
   * An update or delete applied with an idempotency key leaves a receipt in the write's own
   * transaction (the same table as POST's Idempotency-Key), so a retry after a crash between this
   * commit and the caller's answers the first result instead of "stale" (the version moved on
   * because of the first apply itself).
   */
  private async execute(
    req: OperationRequest,
    principal: Parameters<RecordWriteService['create']>[0],
    dryRun: boolean,
  ): Promise<WriteResult> {
    const key = req.idempotencyKey;
    if (dryRun || req.operation === 'create' || key === undefined) return this.executeOnce(req, principal, dryRun, {});
    const requestHash = createHash('sha256')
      .update(canonicalJson({ ...req, idempotencyKey: undefined }))
      .digest('hex');
    const prior = (await this.ds.query(
      'SELECT request_hash, status, response FROM idempotency_key WHERE org_id = $1 AND user_id = $2 AND key = $3',
      [req.requester.orgId, req.requester.userId, key],
    )) as Array<{ request_hash: string; status: number; response: { id: string; version: number | null; previousVersion: number | null } }>;
    if (prior[0]) {
      if (prior[0].request_hash !== requestHash)
        throw new CustodianException('conflict', 'This idempotency key was used with another operation');
      const r = prior[0].response;
      return {
        status: prior[0].status,
        record: { id: r.id, ...(r.version !== null ? { version: r.version } : {}) },
        previousVersion: r.previousVersion,
        replayed: true,
      };
    }
    const receipt = async (m: EntityManager, result: WriteResult): Promise<void> => {
      const response = {
        id: req.recordId,
        version: typeof result.record.version === 'number' ? result.record.version : null,
        previousVersion: result.previousVersion ?? null,
      };
      await m.query(
        'INSERT INTO idempotency_key (org_id, user_id, key, request_hash, status, response) VALUES ($1, $2, $3, $4, $5, $6::jsonb)',
        [req.requester.orgId, req.requester.userId, key, requestHash, result.status, JSON.stringify(response)],
      );
    };
    return this.executeOnce(req, principal, dryRun, { beforeCommit: receipt });
  }

  private executeOnce(
    req: OperationRequest,
    principal: Parameters<RecordWriteService['create']>[0],
    dryRun: boolean,
    extra: Pick<WriteOptions, 'beforeCommit'>,
  ): Promise<WriteResult> {
    const version = req.expectedVersion !== undefined ? `"${req.expectedVersion}"` : undefined;
    const needId = (): string => {
      if (!req.recordId) throw new CustodianException('validation_failed', 'recordId is required for update and delete');
      return req.recordId;
    };
    if (!dryRun && req.operation !== 'create' && req.expectedVersion === undefined)
      throw new CustodianException('validation_failed', 'expectedVersion is required to apply an update or delete');
    switch (req.operation) {
      case 'create':
        return this.records.create(principal, req.object, req.values ?? {}, dryRun ? undefined : req.idempotencyKey, { dryRun });
      case 'update':
        return this.records.update(principal, req.object, needId(), req.values ?? {}, version, { dryRun, ...extra });
      case 'delete':
        return this.records.remove(principal, req.object, needId(), version, { dryRun, ...extra });
    }
  }
}
