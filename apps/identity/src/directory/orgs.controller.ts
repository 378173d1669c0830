import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query, Req } from '@nestjs/common';
import { API_PREFIX, RequirePolicy, assertValid, ApiContract, CursorPageQuery } from '@custodian/platform';
import { idParam, pageOf, type AuthedRequest, type PageOf } from './directory.http';
import { AddMemberSchema, CreateOrgSchema, UpdateMemberSchema, UpdateOrgSchema } from './directory.schemas';
import { InvitationsService, type InvitationView } from './invitations.service';
import { MembersService, type MemberView, type OrgView } from './members.service';
import { Invitation, Items, Member, CursorPage, Org } from '../identity.api-schemas';

const MANAGE_USERS = { capabilities: ['manage_users'] } as const;

/** Organizations and their members; only the org the request acts in exists for it (R1). */
@Controller(`${API_PREFIX}/orgs`)
export class OrgsController {
  constructor(
    @Inject(MembersService) private readonly members: MembersService,
    @Inject(InvitationsService) private readonly invitations: InvitationsService,
  ) {}

  @RequirePolicy({ reason: 'anyone signed in may list the organizations they belong to' })
  @ApiContract({ responses: { 200: Items(Org) } })
  @Get()
  async list(@Req() req: AuthedRequest): Promise<{ items: OrgView[]; nextCursor: null }> {
    return { items: await this.members.myOrgs(req.principal), nextCursor: null };
  }

  @RequirePolicy(MANAGE_USERS)
  @ApiContract({ body: CreateOrgSchema, responses: { 201: Org } })
  @Post()
  create(@Req() req: AuthedRequest, @Body() body: unknown): Promise<OrgView> {
    return this.members.createOrg(req.principal, assertValid(CreateOrgSchema, body, { what: 'organization' }).name);
  }

  @RequirePolicy({ reason: 'members may read their own organization; any other id is not found' })
  @ApiContract({ responses: { 200: Org } })
  @Get(':id')
  get(@Req() req: AuthedRequest, @Param('id') id: string): Promise<OrgView> {
    return this.members.getOrg(req.principal, idParam(id, 'Organization'));
  }

  @RequirePolicy({ capabilities: ['manage_settings'] })
  @ApiContract({ body: UpdateOrgSchema, responses: { 200: Org } })
  @Patch(':id')
  rename(@Req() req: AuthedRequest, @Param('id') id: string, @Body() body: unknown): Promise<OrgView> {
    const input = assertValid(UpdateOrgSchema, body, { what: 'organization change' });
    return this.members.renameOrg(req.principal, idParam(id, 'Organization'), input.name);
  }

  @RequirePolicy(MANAGE_USERS)
  @ApiContract({ query: CursorPageQuery, responses: { 200: CursorPage(Member) } })
  @Get(':id/members')
  listMembers(@Req() req: AuthedRequest, @Param('id') id: string, @Query() q: Record<string, unknown>): Promise<PageOf<MemberView>> {
    return this.members.list(req.principal, idParam(id, 'Organization'), pageOf(q));
  }

  /**
   * Invites by email (202): the user joins only by accepting. The answer is the same whether or not
   * the address has an account anywhere; granting capabilities also needs manage_permissions.
   */
  @RequirePolicy(MANAGE_USERS)
  @ApiContract({ body: AddMemberSchema, responses: { 202: Invitation }, problems: ['conflict'] })
  @Post(':id/members')
  @HttpCode(202)
  addMember(@Req() req: AuthedRequest, @Param('id') id: string, @Body() body: unknown): Promise<InvitationView> {
    return this.invitations.invite(req.principal, idParam(id, 'Organization'), assertValid(AddMemberSchema, body, { what: 'member' }));
  }

  @RequirePolicy(MANAGE_USERS)
  @ApiContract({ query: CursorPageQuery, responses: { 200: CursorPage(Invitation) } })
  @Get(':id/invitations')
  listInvitations(
    @Req() req: AuthedRequest,
    @Param('id') id: string,
    @Query() q: Record<string, unknown>,
  ): Promise<PageOf<InvitationView>> {
    return this.invitations.listForOrg(req.principal, idParam(id, 'Organization'), pageOf(q));
  }

  @RequirePolicy(MANAGE_USERS)
  @ApiContract({ responses: { 204: null } })
  @Delete(':id/invitations/:invitationId')
  @HttpCode(204)
  revokeInvitation(@Req() req: AuthedRequest, @Param('id') id: string, @Param('invitationId') invitationId: string): Promise<void> {
    return this.invitations.revoke(req.principal, idParam(id, 'Organization'), idParam(invitationId, 'Invitation'));
  }

  @RequirePolicy(MANAGE_USERS)
  @ApiContract({ responses: { 200: Member } })
  @Get(':id/members/:userId')
  getMember(@Req() req: AuthedRequest, @Param('id') id: string, @Param('userId') userId: string): Promise<MemberView> {
    return this.members.get(req.principal, idParam(id, 'Organization'), idParam(userId, 'User'));
  }

  /** Role and direct capabilities; granting capabilities also needs manage_permissions (checked in the service). */
  @RequirePolicy(MANAGE_USERS)
  @ApiContract({ body: UpdateMemberSchema, responses: { 200: Member }, problems: ['conflict'] })
  @Patch(':id/members/:userId')
  updateMember(
    @Req() req: AuthedRequest,
    @Param('id') id: string,
    @Param('userId') userId: string,
    @Body() body: unknown,
  ): Promise<MemberView> {
    const input = assertValid(UpdateMemberSchema, body, { what: 'member change' });
    return this.members.update(req.principal, idParam(id, 'Organization'), idParam(userId, 'User'), input);
  }

  @RequirePolicy(MANAGE_USERS)
  @ApiContract({ responses: { 204: null }, problems: ['conflict'] })
  @Delete(':id/members/:userId')
  @HttpCode(204)
  removeMember(@Req() req: AuthedRequest, @Param('id') id: string, @Param('userId') userId: string): Promise<void> {
    return this.members.remove(req.principal, idParam(id, 'Organization'), idParam(userId, 'User'));
  }
}
