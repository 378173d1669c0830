import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query, Req, Res } from '@nestjs/common';
import { API_PREFIX, RequirePolicy, assertValid, ApiContract, CursorPageQuery } from '@custodian/platform';
import type { Response } from 'express';
import { idParam, pageOf, type AuthedRequest, type PageOf } from './directory.http';
import { CreateUserSchema, UpdateUserSchema } from './directory.schemas';
import type { MemberView } from './members.service';
import type { InvitationView } from './invitations.service';
import { UsersService } from './users.service';
import { Invitation, Member, CursorPage } from '../identity.api-schemas';

const MANAGE_USERS = { capabilities: ['manage_users'] } as const;

/** The members of the org a request acts in (docs/identity.md, "Directory API"). */
@Controller(`${API_PREFIX}/users`)
export class UsersController {
  constructor(@Inject(UsersService) private readonly users: UsersService) {}

  @RequirePolicy(MANAGE_USERS)
  @ApiContract({ query: CursorPageQuery, responses: { 200: CursorPage(Member) } })
  @Get()
  list(@Req() req: AuthedRequest, @Query() q: Record<string, unknown>): Promise<PageOf<MemberView>> {
    return this.users.list(req.principal, pageOf(q));
  }

  /** 201 with the new member; 202 with an invitation when the address already has an account (see the service). */
  @RequirePolicy(MANAGE_USERS)
  @ApiContract({ body: CreateUserSchema, responses: { 201: Member, 202: Invitation }, problems: ['conflict'] })
  @Post()
  async create(
    @Req() req: AuthedRequest,
    @Res({ passthrough: true }) res: Response,
    @Body() body: unknown,
  ): Promise<MemberView | InvitationView> {
    const result = await this.users.create(req.principal, assertValid(CreateUserSchema, body, { what: 'user' }));
    res.status(result.status);
    return result.body;
  }

  @RequirePolicy(MANAGE_USERS)
  @ApiContract({ responses: { 200: Member } })
  @Get(':id')
  get(@Req() req: AuthedRequest, @Param('id') id: string): Promise<MemberView> {
    return this.users.get(req.principal, idParam(id, 'User'));
  }

  @RequirePolicy(MANAGE_USERS)
  @ApiContract({ body: UpdateUserSchema, responses: { 200: Member }, problems: ['conflict'] })
  @Patch(':id')
  update(@Req() req: AuthedRequest, @Param('id') id: string, @Body() body: unknown): Promise<MemberView> {
    return this.users.update(req.principal, idParam(id, 'User'), assertValid(UpdateUserSchema, body, { what: 'user change' }));
  }

  /** Removes the user from this org (the account stays for their other orgs). */
  @RequirePolicy(MANAGE_USERS)
  @ApiContract({ responses: { 204: null } })
  @Delete(':id')
  @HttpCode(204)
  remove(@Req() req: AuthedRequest, @Param('id') id: string): Promise<void> {
    return this.users.remove(req.principal, idParam(id, 'User'));
  }
}
