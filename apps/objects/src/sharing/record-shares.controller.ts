import { randomUUID } from 'node:crypto';
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Req, UseFilters } from '@nestjs/common';
import { GetPrincipalSnapshot, type PrincipalSnapshot } from '@custodian/contracts';
import {
  API_PREFIX,
  BUS,
  CustodianException,
  OutboxWriter,
  RequirePolicy,
  SERVICE_DATA_SOURCE,
  assertValid,
  type Bus,
} from '@custodian/platform';
import type { Request } from 'express';
import type { DataSource } from 'typeorm';
import { recordTable } from '../metadata/org-tables';
import { assertNotAgent, objectParam } from '../records/records.controller';
import { RecordsService, recordId } from '../records/records.service';
import { ShareBodySchema, TransferBodySchema } from './sharing.schemas';
import { DenialAuditFilter } from '../records/denial-audit.filter';

type AuthedRequest = Request & { principal: PrincipalSnapshot };
const GOVERNED = { reason: 'managing a record’s shares needs full access or manage_sharing, decided by libs/policy' } as const;
const MAX_SHARES_PER_RECORD = 500;

export interface ShareView {
  id: string;
  granteeType: string;
  granteeId: string;
  accessLevel: string;
  createdBy: string;
  createdAt: string;
}

/**
 * Explicit shares of one record (R4e) and owner transfer. Invisible records answer 404 (R1); visible
 * ones without full access (or manage_sharing for shares) answer 403.
 */
@UseFilters(DenialAuditFilter)
@Controller(`${API_PREFIX}/data/:object/:id`)
export class RecordSharesController {
  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(RecordsService) private readonly records: RecordsService,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(BUS) private readonly bus: Bus,
  ) {}

  @RequirePolicy(GOVERNED)
  @Get('shares')
  async list(@Req() req: AuthedRequest, @Param('object') object: string, @Param('id') id: string): Promise<{ shares: ShareView[] }> {
    const { decision } = await this.records.context(req.principal, objectParam(object));
    recordId(id);
    return this.ds.transaction(async (m) => {
      await this.records.lockForWrite(m, decision, req.principal.orgId, object, id, 'share');
      const rows: Array<Record<string, unknown>> = await m.query(
        `SELECT id, grantee_type, grantee_id, access_level, created_by, created_at FROM record_shares
          WHERE org_id = $1 AND object_name = $2 AND record_id = $3 ORDER BY created_at, id LIMIT ${MAX_SHARES_PER_RECORD}`,
        [req.principal.orgId, object, id],
      );
      return { shares: rows.map(shareView) };
    });
  }

  @RequirePolicy(GOVERNED)
  @Post('shares')
  async grant(
    @Req() req: AuthedRequest,
    @Param('object') object: string,
    @Param('id') id: string,
    @Body() body: unknown,
  ): Promise<ShareView> {
    const input = assertValid(ShareBodySchema, body, { what: 'share' });
    assertNotAgent(req.principal);
    const { decision } = await this.records.context(req.principal, objectParam(object));
    recordId(id);
    const orgId = req.principal.orgId;
    return this.ds.transaction(async (m) => {
      await this.records.lockForWrite(m, decision, orgId, object, id, 'share');
      const count: Array<{ n: number }> = await m.query(
        'SELECT count(*)::int AS n FROM record_shares WHERE org_id = $1 AND object_name = $2 AND record_id = $3',
        [orgId, object, id],
      );
      if (count[0].n >= MAX_SHARES_PER_RECORD) throw new CustodianException('conflict', 'Too many shares on this record');
      const rows: Array<Record<string, unknown>> = await m.query(
        `INSERT INTO record_shares (id, org_id, object_name, record_id, grantee_type, grantee_id, access_level, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (org_id, object_name, record_id, grantee_type, grantee_id) DO UPDATE SET access_level = EXCLUDED.access_level
         RETURNING id, grantee_type, grantee_id, access_level, created_by, created_at`,
        [randomUUID(), orgId, object, id, input.granteeType, input.granteeId, input.accessLevel, req.principal.userId],
      );
      await this.outbox.append(m, {
        orgId,
        action: 'objects.share.granted',
        outcome: 'success',
        target: { type: object, id },
        details: { sharedWith: { type: input.granteeType, id: input.granteeId }, accessLevel: input.accessLevel },
      });
      return shareView(rows[0]);
    });
  }

  @RequirePolicy(GOVERNED)
  @Delete('shares/:shareId')
  @HttpCode(204)
  async revoke(
    @Req() req: AuthedRequest,
    @Param('object') object: string,
    @Param('id') id: string,
    @Param('shareId') shareId: string,
  ): Promise<void> {
    assertNotAgent(req.principal);
    const { decision } = await this.records.context(req.principal, objectParam(object));
    recordId(id);
    recordId(shareId);
    const orgId = req.principal.orgId;
    await this.ds.transaction(async (m) => {
      await this.records.lockForWrite(m, decision, orgId, object, id, 'share');
      const [rows] = (await m.query(
        'DELETE FROM record_shares WHERE org_id = $1 AND object_name = $2 AND record_id = $3 AND id = $4 RETURNING grantee_type, grantee_id',
        [orgId, object, id, shareId],
      )) as [Array<Record<string, string>>, number];
      if (rows.length === 0) throw CustodianException.notFound('Share not found');
      await this.outbox.append(m, {
        orgId,
        action: 'objects.share.revoked',
        outcome: 'success',
        target: { type: object, id },
        details: { sharedWith: { type: rows[0].grantee_type, id: rows[0].grantee_id } },
      });
    });
  }

  /** Owner transfer is its own operation (R5: owner_id is never written directly); needs full access. */
  @RequirePolicy(GOVERNED)
  @Post('transfer')
  @HttpCode(200)
  async transfer(
    @Req() req: AuthedRequest,
    @Param('object') object: string,
    @Param('id') id: string,
    @Body() body: unknown,
  ): Promise<{ id: string; owner_id: string; version: number }> {
    const input = assertValid(TransferBodySchema, body, { what: 'transfer' });
    assertNotAgent(req.principal);
    const { decision } = await this.records.context(req.principal, objectParam(object));
    recordId(id);
    const orgId = req.principal.orgId;
    // The new owner must be an active member of this org; identity is the one that knows.
    await this.bus.request(GetPrincipalSnapshot, { userId: input.ownerId, orgId }).catch(() => {
      throw new CustodianException('validation_failed', 'The new owner is not a member of this organization', {
        issues: [{ path: '/ownerId', message: 'not a member' }],
      });
    });
    return this.ds.transaction(async (m) => {
      const before = await this.records.lockForWrite(m, decision, orgId, object, id, 'transfer');
      const [rows] = (await m.query(
        `UPDATE ${recordTable(orgId, object)} SET owner_id = $3, version = version + 1, updated_at = now(), updated_by = $4 WHERE id = $1 AND org_id = $2 RETURNING version`,
        [id, orgId, input.ownerId, req.principal.userId],
      )) as [Array<{ version: number }>, number];
      await this.outbox.append(m, {
        orgId,
        action: 'objects.record.transferred',
        outcome: 'success',
        target: { type: object, id },
        details: { ...(before.owner_id ? { fromOwner: before.owner_id } : {}), toOwner: input.ownerId },
      });
      return { id, owner_id: input.ownerId, version: Number(rows[0].version) };
    });
  }
}

function shareView(r: Record<string, unknown>): ShareView {
  return {
    id: String(r.id),
    granteeType: String(r.grantee_type),
    granteeId: String(r.grantee_id),
    accessLevel: String(r.access_level),
    createdBy: String(r.created_by),
    createdAt: r.created_at instanceof Date ? r.created_at.toISOString() : String(r.created_at),
  };
}
