import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import {
  ApplyRecordOperation,
  DryRunRecordOperation,
  GetPrincipalSnapshot,
  type RecordOperationResult,
  type RequestOf,
} from '@custodian/contracts';
import { BUS, CustodianException, requestContext, type Bus } from '@custodian/platform';
import { isPolicyError } from '@custodian/policy';
import { RecordsService, type WriteResult } from './records.service';

type OperationRequest = RequestOf<typeof ApplyRecordOperation>;

/** Maps a refusal to the contract's outcome; anything else stays an error (transport envelope). */
function refusal(error: unknown): RecordOperationResult | undefined {
  if (isPolicyError(error)) {
    const outcome = error.status === 404 ? 'not_found' : error.status === 403 ? 'forbidden' : error.status === 409 ? 'stale' : 'invalid';
    return { outcome, code: error.code, message: `refused by the access policy (${error.code})` };
  }
  if (error instanceof CustodianException) {
    const byCode: Record<string, RecordOperationResult['outcome']> = {
      precondition_failed: 'stale',
      not_found: 'not_found',
      forbidden: 'forbidden',
      unauthenticated: 'forbidden',
      validation_failed: 'invalid',
      bad_request: 'invalid',
      conflict: 'conflict',
    };
    const outcome = byCode[error.code];
    if (outcome) return { outcome, code: error.code, message: error.message.slice(0, 2000) };
  }
  return undefined;
}

/**
 * Dry-run and apply-with-version over the bus (DESIGN §5.3, for approvals). Both re-read the
 * requester's snapshot from identity (user ∩ agent delegation) and run the same code path as REST;
 * a dry-run rolls back at the end, so its decision and diff are exactly what an apply would do now.
 */
@Injectable()
export class RecordOperationsBusHandlers implements OnApplicationBootstrap {
  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(RecordsService) private readonly records: RecordsService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.bus.handle(DryRunRecordOperation, (req) => this.run(req, true));
    await this.bus.handle(ApplyRecordOperation, (req) => this.run(req, false));
  }

  async run(req: OperationRequest, dryRun: boolean): Promise<RecordOperationResult> {
    let principal;
    try {
      principal = await this.bus.request(GetPrincipalSnapshot, {
        userId: req.requester.userId,
        orgId: req.requester.orgId,
        ...(req.requester.agent ? { delegation: req.requester.agent } : {}),
      });
    } catch (error) {
      // A requester who is no longer an active member has no permission left (P1).
      if (
        error instanceof CustodianException &&
        (error.code === 'unauthenticated' || error.code === 'not_found' || error.code === 'forbidden')
      )
        return {
          outcome: 'forbidden',
          code: 'requester_inactive',
          message: 'The requester is no longer allowed to act in this organization',
        };
      throw error;
    }
    const ctx = { requestId: requestContext.requestId() ?? `bus-${Date.now()}`, principal };
    try {
      const result = await requestContext.run(ctx, () => this.execute(req, principal, dryRun));
      return {
        outcome: dryRun ? 'allowed' : 'applied',
        ...(typeof result.record.id === 'string' ? { recordId: result.record.id } : {}),
        version: dryRun
          ? (result.previousVersion ?? null)
          : typeof result.record.version === 'number'
            ? result.record.version
            : (result.previousVersion ?? null),
        diff: result.diff ?? {},
      };
    } catch (error) {
      const answer = refusal(error);
      if (answer) return answer;
      throw error;
    }
  }

  private execute(req: OperationRequest, principal: Parameters<RecordsService['create']>[0], dryRun: boolean): Promise<WriteResult> {
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
        return this.records.update(principal, req.object, needId(), req.values ?? {}, version, { dryRun });
      case 'delete':
        return this.records.remove(principal, req.object, needId(), version, { dryRun });
    }
  }
}
