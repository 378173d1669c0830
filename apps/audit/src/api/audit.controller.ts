import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { API_PREFIX, CustodianException, RequirePolicy, assertValid, ApiContract } from '@custodian/platform';
import { ErrorCode } from '@custodian/contracts';
import type { Request, Response } from 'express';
import { CheckpointService } from '../checkpoints/checkpoint.service';
import type { SignedCheckpoint } from '../checkpoints/checkpoint-statement';
import { ArchiveRequestSchema, ListEventsQuerySchema } from './audit-api.schemas';
import { AuditQueryService } from './audit-query.service';
import { AnyObject, ArchiveAnswer, CheckpointList, CheckpointSigned, EventPage, VerifyAnswer } from '../audit.api-schemas';

type AuthedRequest = Request & { principal: PrincipalSnapshot };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The audit API (docs/audit.md, "Query, export, archive"). Every route reads or changes only the
 * caller's own organization's chain.
 */
@Controller(`${API_PREFIX}/audit`)
export class AuditController {
  constructor(
    @Inject(AuditQueryService) private readonly audit: AuditQueryService,
    @Inject(CheckpointService) private readonly checkpoints: CheckpointService,
  ) {}

  @RequirePolicy({ capabilities: ['view_audit'] })
  @ApiContract({ summary: 'Search the org’s audit events', query: ListEventsQuerySchema, responses: { 200: EventPage } })
  @Get('events')
  list(@Req() req: AuthedRequest, @Query() query: unknown): ReturnType<AuditQueryService['list']> {
    return this.audit.list(req.principal, assertValid(ListEventsQuerySchema, query, { what: 'audit query' }));
  }

  @RequirePolicy({ capabilities: ['view_audit'] })
  @ApiContract({ responses: { 200: AnyObject } })
  @Get('events/:id')
  get(@Req() req: AuthedRequest, @Param('id') id: string): ReturnType<AuditQueryService['get']> {
    if (!UUID.test(id)) throw new CustodianException(ErrorCode.NotFound, 'No such audit event');
    return this.audit.get(req.principal, id.toLowerCase());
  }

  @RequirePolicy({ capabilities: ['view_audit'] })
  @ApiContract({
    summary: 'Verify the org’s hash chain (and its latest signed checkpoint) on the server',
    responses: { 200: VerifyAnswer },
  })
  @Get('verify')
  verify(@Req() req: AuthedRequest): ReturnType<AuditQueryService['verify']> {
    return this.audit.verify(req.principal.orgId);
  }

  @RequirePolicy({ capabilities: ['view_audit'] })
  @ApiContract({ responses: { 200: CheckpointList } })
  @Get('checkpoints')
  async listCheckpoints(@Req() req: AuthedRequest): Promise<{ items: SignedCheckpoint[]; nextCursor: null; publicKeys: string[] }> {
    return { items: await this.checkpoints.list(req.principal.orgId, 100), nextCursor: null, publicKeys: this.checkpoints.trustedKeys() };
  }

  @RequirePolicy({ capabilities: ['manage_audit'] })
  @ApiContract({ responses: { 201: CheckpointSigned } })
  @Post('checkpoints')
  @HttpCode(201)
  async signCheckpoint(@Req() req: AuthedRequest): Promise<{ checkpoint: SignedCheckpoint | null }> {
    await this.checkpoints.checkpointAll();
    return { checkpoint: (await this.checkpoints.latest(req.principal.orgId)) ?? null };
  }

  @RequirePolicy({ capabilities: ['view_audit'] })
  @ApiContract({
    summary: 'Stream the org’s audit events as NDJSON',
    responses: { 200: { contentType: 'application/x-ndjson', description: 'One event per line; custodian-audit-view: full | filtered' } },
  })
  @Get('export')
  async export(@Req() req: AuthedRequest, @Res() res: Response): Promise<void> {
    // Before any header: an unanswered visibility question is a clean 503 problem document.
    const { full, lines } = await this.audit.exportFor(req.principal);
    res.status(200).type('application/x-ndjson');
    res.setHeader('content-disposition', 'attachment; filename="audit-export.ndjson"');
    // `filtered`: records or fields were withheld, lines carry no hashes, and the file does not verify offline.
    res.setHeader('custodian-audit-view', full ? 'full' : 'filtered');
    try {
      for await (const line of lines) {
        if (!res.write(line)) await new Promise((resolve) => res.once('drain', resolve));
        if (res.destroyed) return;
      }
      res.end();
    } catch {
      // Headers are gone: cut the stream so the client sees an incomplete export, never a silent short one.
      res.destroy();
    }
  }

  @RequirePolicy({ capabilities: ['manage_audit'] })
  @ApiContract({ body: ArchiveRequestSchema, responses: { 200: ArchiveAnswer } })
  @Post('archive')
  @HttpCode(200)
  archive(@Req() req: AuthedRequest, @Body() body: unknown): Promise<{ archived: number }> {
    const { before } = assertValid(ArchiveRequestSchema, body, { what: 'archive request' });
    return this.audit.archive(req.principal.orgId, new Date(before));
  }
}
