import { Inject, Injectable } from '@nestjs/common';
import { GetPrincipalSnapshot, type PrincipalSnapshot } from '@custodian/contracts';
import { BUS, CustodianException, OutboxWriter, SERVICE_DATA_SOURCE, type Bus } from '@custodian/platform';
import type { Decision } from '@custodian/policy';
import type { DataSource } from 'typeorm';
import { recordTable } from '../metadata/org-tables';
import { lockForWrite } from '../records/record-rows';

/** Owner transfer is its own operation (R5: owner_id is never written directly); needs full access. */
@Injectable()
export class RecordTransferService {
  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(BUS) private readonly bus: Bus,
  ) {}

  async transfer(
    principal: PrincipalSnapshot,
    decision: Decision,
    object: string,
    id: string,
    ownerId: string,
  ): Promise<{ id: string; owner_id: string; version: number }> {
    const orgId = principal.orgId;
    // The new owner must be an active member of this org; identity is the one that knows.
    await this.bus.request(GetPrincipalSnapshot, { userId: ownerId, orgId }).catch(() => {
      throw new CustodianException('validation_failed', 'The new owner is not a member of this organization', {
        issues: [{ path: '/ownerId', message: 'not a member' }],
      });
    });
    return this.ds.transaction(async (m) => {
      const before = await lockForWrite(m, decision, orgId, object, id, 'transfer');
      const [rows] = (await m.query(
        `UPDATE ${recordTable(orgId, object)} SET owner_id = $3, version = version + 1, updated_at = now(), updated_by = $4 WHERE id = $1 AND org_id = $2 RETURNING version`,
        [id, orgId, ownerId, principal.userId],
      )) as [Array<{ version: number }>, number];
      await this.outbox.append(m, {
        orgId,
        action: 'objects.record.transferred',
        outcome: 'success',
        target: { type: object, id },
        details: { ...(before.owner_id ? { fromOwner: before.owner_id } : {}), toOwner: ownerId },
      });
      return { id, owner_id: ownerId, version: Number(rows[0].version) };
    });
  }
}
