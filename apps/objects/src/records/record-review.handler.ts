import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { GetPrincipalSnapshot, ReviewRecord, type RequestOf, type ResponseOf } from '@custodian/contracts';
import { BUS, CustodianException, requestContext, type Bus } from '@custodian/platform';
import { isPolicyError } from '@custodian/policy';
import { RecordQueryService } from './record-query.service';

type Answer = ResponseOf<typeof ReviewRecord>;

/**
 * What one reviewer may see of a pending action's target (for approvals): the readable fields of
 * the object and the record's current readable values, through the same path as a REST read. A
 * reviewer who cannot read the record gets `not_found`, exactly as for a missing record.
 */
@Injectable()
export class RecordReviewBusHandler implements OnApplicationBootstrap {
  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(RecordQueryService) private readonly records: RecordQueryService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.bus.handle(ReviewRecord, (req) => this.review(req));
  }

  async review(req: RequestOf<typeof ReviewRecord>): Promise<Answer> {
    const hidden: Answer = { outcome: 'not_found', readableFields: [] };
    let principal;
    try {
      principal = await this.bus.request(GetPrincipalSnapshot, { userId: req.reviewer.userId, orgId: req.reviewer.orgId });
    } catch (error) {
      if (error instanceof CustodianException && (error.code === 'unauthenticated' || error.code === 'not_found')) return hidden;
      throw error;
    }
    const ctx = { requestId: requestContext.requestId() ?? `bus-${Date.now()}`, principal };
    return requestContext.run(ctx, async () => {
      try {
        const { decision } = await this.records.context(principal, req.object);
        const readableFields = [...decision.readableFields(req.object)];
        if (readableFields.length === 0) return hidden;
        if (req.recordId === undefined) return { outcome: 'ok', readableFields };
        const record = await this.records.get(principal, req.object, req.recordId);
        return { outcome: 'ok', readableFields, record };
      } catch (error) {
        if (isPolicyError(error) || (error instanceof CustodianException && (error.code === 'not_found' || error.code === 'forbidden')))
          return hidden;
        throw error;
      }
    });
  }
}
