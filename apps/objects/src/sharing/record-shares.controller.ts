import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Req, Res, UseFilters } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { API_PREFIX, RequirePolicy, assertValid, ApiContract } from '@custodian/platform';
import type { Request, Response } from 'express';
import { assertNotAgent, objectParam } from '../records/records.controller';
import { RecordQueryService } from '../records/record-query.service';
import { recordId } from '../records/record-rows';
import { RecordSharesService, type ShareGrant, type ShareView } from './record-shares.service';
import { RecordTransferService } from './record-transfer.service';
import { ShareBodySchema, TransferBodySchema } from './sharing.schemas';
import { DenialAuditFilter } from '../records/denial-audit.filter';
import { AnyObject, ShareGrantAnswer, Shares } from '../objects.api-schemas';

type AuthedRequest = Request & { principal: PrincipalSnapshot };
const GOVERNED = { reason: 'managing a record’s shares needs full access or manage_sharing, decided by libs/policy' } as const;

/**
 * Explicit shares of one record (R4e) and owner transfer. Invisible records answer 404 (R1); visible
 * ones without full access (or manage_sharing for shares) answer 403.
 */
@UseFilters(DenialAuditFilter)
@Controller(`${API_PREFIX}/data/:object/:id`)
export class RecordSharesController {
  constructor(
    @Inject(RecordQueryService) private readonly records: RecordQueryService,
    @Inject(RecordSharesService) private readonly shares: RecordSharesService,
    @Inject(RecordTransferService) private readonly transfers: RecordTransferService,
  ) {}

  @RequirePolicy(GOVERNED)
  @ApiContract({ responses: { 200: Shares }, problems: ['object_not_found', 'action_not_allowed'] })
  @Get('shares')
  async list(
    @Req() req: AuthedRequest,
    @Param('object') object: string,
    @Param('id') id: string,
  ): Promise<{ items: ShareView[]; nextCursor: null }> {
    const { decision } = await this.records.context(req.principal, objectParam(object));
    recordId(id);
    return { items: await this.shares.list(req.principal, decision, object, id), nextCursor: null };
  }

  /** The grantee must be a member, group or role of this org (400 otherwise, the same for unknown and foreign ids). */
  @RequirePolicy(GOVERNED)
  @ApiContract({
    body: ShareBodySchema,
    responses: { 201: ShareGrantAnswer, 200: ShareGrantAnswer },
    problems: ['object_not_found', 'action_not_allowed', 'conflict'],
  })
  @Post('shares')
  async grant(
    @Req() req: AuthedRequest,
    @Res({ passthrough: true }) res: Response,
    @Param('object') object: string,
    @Param('id') id: string,
    @Body() body: unknown,
  ): Promise<ShareGrant> {
    const input = assertValid(ShareBodySchema, body, { what: 'share' });
    assertNotAgent(req.principal);
    const { decision } = await this.records.context(req.principal, objectParam(object));
    recordId(id);
    const granted = await this.shares.grant(req.principal, decision, object, id, input);
    // 201 for a new share, 200 when the grantee's existing share was updated (the answer says which).
    if (!granted.created) res.status(200);
    return granted;
  }

  @RequirePolicy(GOVERNED)
  @ApiContract({ responses: { 204: null }, problems: ['object_not_found', 'action_not_allowed'] })
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
    await this.shares.revoke(req.principal, decision, object, id, shareId);
  }

  /** Owner transfer is its own operation (R5: owner_id is never written directly); needs full access. */
  @RequirePolicy(GOVERNED)
  @ApiContract({
    body: TransferBodySchema,
    responses: { 200: AnyObject },
    problems: ['object_not_found', 'action_not_allowed', 'precondition_failed'],
  })
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
    return this.transfers.transfer(req.principal, decision, object, id, input.ownerId);
  }
}
