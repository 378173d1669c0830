import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query, Req } from '@nestjs/common';
import { API_PREFIX, RequirePolicy, assertValid, ApiContract, CursorPageQuery } from '@custodian/platform';
import { idParam, pageOf, type AuthedRequest, type PageOf } from './directory.http';
import { AddGroupMemberSchema, CreateGroupSchema, UpdateGroupSchema } from './directory.schemas';
import { GroupsService, type GroupMemberView, type GroupView } from './groups.service';
import { Group, GroupMember, CursorPage } from '../identity.api-schemas';

const MANAGE_USERS = { capabilities: ['manage_users'] } as const;

/** Groups and their members (grantees of permission sets and sharing). */
@Controller(`${API_PREFIX}/groups`)
export class GroupsController {
  constructor(@Inject(GroupsService) private readonly groups: GroupsService) {}

  @RequirePolicy(MANAGE_USERS)
  @ApiContract({ query: CursorPageQuery, responses: { 200: CursorPage(Group) } })
  @Get()
  list(@Req() req: AuthedRequest, @Query() q: Record<string, unknown>): Promise<PageOf<GroupView>> {
    return this.groups.list(req.principal.orgId, pageOf(q));
  }

  @RequirePolicy(MANAGE_USERS)
  @ApiContract({ body: CreateGroupSchema, responses: { 201: Group }, problems: ['conflict'] })
  @Post()
  create(@Req() req: AuthedRequest, @Body() body: unknown): Promise<GroupView> {
    return this.groups.create(req.principal, assertValid(CreateGroupSchema, body, { what: 'group' }));
  }

  @RequirePolicy(MANAGE_USERS)
  @ApiContract({ responses: { 200: Group } })
  @Get(':id')
  get(@Req() req: AuthedRequest, @Param('id') id: string): Promise<GroupView> {
    return this.groups.get(req.principal.orgId, idParam(id, 'Group'));
  }

  @RequirePolicy(MANAGE_USERS)
  @ApiContract({ body: UpdateGroupSchema, responses: { 200: Group }, problems: ['conflict'] })
  @Patch(':id')
  update(@Req() req: AuthedRequest, @Param('id') id: string, @Body() body: unknown): Promise<GroupView> {
    return this.groups.update(req.principal, idParam(id, 'Group'), assertValid(UpdateGroupSchema, body, { what: 'group change' }));
  }

  @RequirePolicy(MANAGE_USERS)
  @ApiContract({ responses: { 204: null } })
  @Delete(':id')
  @HttpCode(204)
  remove(@Req() req: AuthedRequest, @Param('id') id: string): Promise<void> {
    return this.groups.remove(req.principal, idParam(id, 'Group'));
  }

  @RequirePolicy(MANAGE_USERS)
  @ApiContract({ query: CursorPageQuery, responses: { 200: CursorPage(GroupMember) } })
  @Get(':id/members')
  members(@Req() req: AuthedRequest, @Param('id') id: string, @Query() q: Record<string, unknown>): Promise<PageOf<GroupMemberView>> {
    return this.groups.members(req.principal.orgId, idParam(id, 'Group'), pageOf(q));
  }

  @RequirePolicy(MANAGE_USERS)
  @ApiContract({ body: AddGroupMemberSchema, responses: { 201: GroupMember }, problems: ['conflict'] })
  @Post(':id/members')
  addMember(@Req() req: AuthedRequest, @Param('id') id: string, @Body() body: unknown): Promise<GroupMemberView> {
    const input = assertValid(AddGroupMemberSchema, body, { what: 'group member' });
    return this.groups.addMember(req.principal, idParam(id, 'Group'), input.userId);
  }

  @RequirePolicy(MANAGE_USERS)
  @ApiContract({ responses: { 204: null } })
  @Delete(':id/members/:userId')
  @HttpCode(204)
  removeMember(@Req() req: AuthedRequest, @Param('id') id: string, @Param('userId') userId: string): Promise<void> {
    return this.groups.removeMember(req.principal, idParam(id, 'Group'), idParam(userId, 'Group member'));
  }
}
