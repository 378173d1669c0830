import { Controller, Delete, Get, HttpCode, Inject, Param, Req } from '@nestjs/common';
import { API_PREFIX, ApiContract, DateTime, RequirePolicy, Uuid } from '@custodian/platform';
import { Type } from '@sinclair/typebox';
import { idParam, type AuthedRequest } from '../directory/directory.http';
import { OAuthConsentsService, type ConsentView } from './oauth-consents.service';

/**
 * A user's consents to MCP clients (OAuth grants). Own only; an agent's token never manages them
 * (credentialAdmin): an agent cannot renew or end its user's delegations.
 */
const ConsentSchema = Type.Object({
  id: Uuid,
  clientId: Type.String(),
  clientName: Type.String(),
  scopes: Type.Array(Type.String()),
  orgId: Uuid,
  createdAt: DateTime,
  expiresAt: DateTime,
});

@Controller(`${API_PREFIX}/oauth/consents`)
export class OAuthConsentsController {
  constructor(@Inject(OAuthConsentsService) private readonly consents: OAuthConsentsService) {}

  @RequirePolicy({ reason: 'anyone signed in may list the consents they gave', credentialAdmin: true })
  @ApiContract({
    summary: 'The consents to MCP clients the caller gave (live, in this org)',
    responses: { 200: Type.Object({ items: Type.Array(ConsentSchema), nextCursor: Type.Null() }) },
  })
  @Get()
  async list(@Req() req: AuthedRequest): Promise<{ items: ConsentView[]; nextCursor: null }> {
    return { items: await this.consents.list(req.principal), nextCursor: null };
  }

  @RequirePolicy({
    reason: 'anyone signed in may withdraw a consent they gave; other users\u2019 ids are not found',
    credentialAdmin: true,
  })
  @ApiContract({
    summary: 'Withdraw a consent: its session ends, its refresh tokens are refused',
    responses: { 204: null },
    problems: ['not_found'],
  })
  @Delete(':id')
  @HttpCode(204)
  async revoke(@Req() req: AuthedRequest, @Param('id') id: string): Promise<void> {
    await this.consents.revoke(req.principal, idParam(id, 'Consent'));
  }
}
