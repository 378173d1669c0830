import { Controller, Delete, Get, HttpCode, Inject, Param, Req } from '@nestjs/common';
import { API_PREFIX, RequirePolicy } from '@custodian/platform';
import { idParam, type AuthedRequest } from '../directory/directory.http';
import { OAuthConsentsService, type ConsentView } from './oauth-consents.service';

/**
 * A user's consents to MCP clients (OAuth grants). Own only; an agent's token never manages them
 * (credentialAdmin): an agent cannot renew or end its user's delegations.
 */
@Controller(`${API_PREFIX}/oauth/consents`)
export class OAuthConsentsController {
  constructor(@Inject(OAuthConsentsService) private readonly consents: OAuthConsentsService) {}

  @RequirePolicy({ reason: 'anyone signed in may list the consents they gave', credentialAdmin: true })
  @Get()
  async list(@Req() req: AuthedRequest): Promise<{ items: ConsentView[] }> {
    return { items: await this.consents.list(req.principal) };
  }

  @RequirePolicy({
    reason: 'anyone signed in may withdraw a consent they gave; other users\u2019 ids are not found',
    credentialAdmin: true,
  })
  @Delete(':id')
  @HttpCode(204)
  async revoke(@Req() req: AuthedRequest, @Param('id') id: string): Promise<void> {
    await this.consents.revoke(req.principal, idParam(id, 'Consent'));
  }
}
