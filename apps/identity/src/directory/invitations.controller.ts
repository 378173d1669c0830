import { Controller, Get, HttpCode, Inject, Param, Post, Req } from '@nestjs/common';
import { API_PREFIX, RequirePolicy, ApiContract } from '@custodian/platform';
import { idParam, type AuthedRequest } from './directory.http';
import { InvitationsService, type JoinedView, type MyInvitationView } from './invitations.service';
import { Items, Joined, MyInvitation } from '../identity.api-schemas';

const OWN = { reason: 'a person answers the invitations addressed to their own email; the service refuses agents and API keys' } as const;

/** The caller's own invitations to other orgs; an org invites through `orgs/:id/members`. */
@Controller(`${API_PREFIX}/invitations`)
export class InvitationsController {
  constructor(@Inject(InvitationsService) private readonly invitations: InvitationsService) {}

  @RequirePolicy(OWN)
  @ApiContract({ responses: { 200: Items(MyInvitation) } })
  @Get()
  list(@Req() req: AuthedRequest): Promise<{ items: MyInvitationView[]; nextCursor: null }> {
    return this.invitations.listMine(req.principal);
  }

  @RequirePolicy(OWN)
  @ApiContract({ responses: { 200: Joined }, problems: ['conflict'] })
  @Post(':id/accept')
  @HttpCode(200)
  accept(@Req() req: AuthedRequest, @Param('id') id: string): Promise<JoinedView> {
    return this.invitations.accept(req.principal, idParam(id, 'Invitation'));
  }

  @RequirePolicy(OWN)
  @ApiContract({ responses: { 204: null } })
  @Post(':id/decline')
  @HttpCode(204)
  decline(@Req() req: AuthedRequest, @Param('id') id: string): Promise<void> {
    return this.invitations.decline(req.principal, idParam(id, 'Invitation'));
  }
}
