import { pipeline } from 'node:stream';
import { Controller, Delete, Get, Headers, Inject, Param, Put, Req, Res, UseFilters } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { API_PREFIX, RequirePolicy, ApiContract } from '@custodian/platform';
import type { Request, Response } from 'express';
import { DenialAuditFilter } from '../records/denial-audit.filter';
import { assertNotAgent, objectParam } from '../records/records.controller';
import { attachmentDisposition } from './file-headers';
import { FilesService } from './files.service';
import { RecordAnswer } from '../objects.api-schemas';

type AuthedRequest = Request & { principal: PrincipalSnapshot };

const GOVERNED = { reason: 'file fields follow the record row filter and the field read/edit level, decided by libs/policy' } as const;

function etag(record: Record<string, unknown>): string {
  return `"${String(record.version ?? '')}"`;
}

/**
 * Uploaded files of `file` fields, under the records API (docs/files.md): the raw request body is
 * streamed to storage; a download streams it back as an attachment.
 */
@UseFilters(DenialAuditFilter)
@Controller(API_PREFIX)
export class FilesController {
  constructor(@Inject(FilesService) private readonly files: FilesService) {}

  @RequirePolicy(GOVERNED)
  @ApiContract({
    summary: 'Upload the file of a file field (the raw body is the file)',
    headers: { 'if-match': {}, 'content-type': { required: true } },
    responses: { 200: RecordAnswer },
    problems: ['object_not_found', 'field_not_editable', 'payload_too_large', 'unsupported_media_type', 'precondition_failed'],
  })
  @Put('data/:object/:id/files/:field')
  async upload(
    @Req() req: AuthedRequest,
    @Res({ passthrough: true }) res: Response,
    @Param('object') object: string,
    @Param('id') id: string,
    @Param('field') field: string,
  ): Promise<Record<string, unknown>> {
    // Agents propose changes through approvals, which do not carry files.
    assertNotAgent(req.principal);
    const { record } = await this.files.upload(req.principal, objectParam(object), id, field, req, req.headers);
    res.setHeader('ETag', etag(record));
    return record;
  }

  @RequirePolicy(GOVERNED)
  @ApiContract({
    responses: { 200: { contentType: 'application/octet-stream', description: 'The stored file, as an attachment' } },
    problems: ['object_not_found', 'field_not_readable'],
  })
  @Get('data/:object/:id/files/:field')
  async download(
    @Req() req: AuthedRequest,
    @Res() res: Response,
    @Param('object') object: string,
    @Param('id') id: string,
    @Param('field') field: string,
  ): Promise<void> {
    const { file, body } = await this.files.download(req.principal, objectParam(object), id, field);
    res.status(200);
    res.setHeader('Content-Type', file.contentType);
    res.setHeader('Content-Length', String(file.size));
    res.setHeader('Content-Disposition', attachmentDisposition(file.name));
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // Even opened directly, stored content runs no script and loads nothing.
    res.setHeader('Content-Security-Policy', "default-src 'none'; sandbox");
    res.setHeader('Cache-Control', 'private, no-store');
    res.setHeader('Digest', `sha-256=${Buffer.from(file.sha256, 'hex').toString('base64')}`);
    // pipeline closes the storage stream when the client goes away, and ends the response on a storage error.
    pipeline(body, res, () => undefined);
  }

  @RequirePolicy(GOVERNED)
  @ApiContract({
    headers: { 'if-match': {} },
    responses: { 200: RecordAnswer },
    problems: ['object_not_found', 'field_not_editable', 'precondition_failed'],
  })
  @Delete('data/:object/:id/files/:field')
  async remove(
    @Req() req: AuthedRequest,
    @Res({ passthrough: true }) res: Response,
    @Param('object') object: string,
    @Param('id') id: string,
    @Param('field') field: string,
    @Headers('if-match') ifMatch?: string,
  ): Promise<Record<string, unknown>> {
    assertNotAgent(req.principal);
    const { record } = await this.files.remove(req.principal, objectParam(object), id, field, ifMatch);
    res.setHeader('ETag', etag(record));
    return record;
  }
}
