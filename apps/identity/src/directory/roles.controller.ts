import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query, Req } from '@nestjs/common';
import { API_PREFIX, RequirePolicy, assertValid, ApiContract, CursorPageQuery } from '@custodian/platform';
import { idParam, pageOf, type AuthedRequest, type PageOf } from './directory.http';
import { CreateRoleSchema, UpdateRoleSchema } from './directory.schemas';
import { RolesService, type RoleView } from './roles.service';
import { CursorPage, Role } from '../identity.api-schemas';

const MANAGE_ROLES = { capabilities: ['manage_roles'] } as const;

/** The org's role tree (R4c). */
@Controller(`${API_PREFIX}/roles`)
export class RolesController {
  constructor(@Inject(RolesService) private readonly roles: RolesService) {}

  @RequirePolicy(MANAGE_ROLES)
  @ApiContract({ query: CursorPageQuery, responses: { 200: CursorPage(Role) } })
  @Get()
  list(@Req() req: AuthedRequest, @Query() q: Record<string, unknown>): Promise<PageOf<RoleView>> {
    return this.roles.list(req.principal.orgId, pageOf(q));
  }

  @RequirePolicy(MANAGE_ROLES)
  @ApiContract({ body: CreateRoleSchema, responses: { 201: Role }, problems: ['conflict'] })
  @Post()
  create(@Req() req: AuthedRequest, @Body() body: unknown): Promise<RoleView> {
    return this.roles.create(req.principal, assertValid(CreateRoleSchema, body, { what: 'role' }));
  }

  @RequirePolicy(MANAGE_ROLES)
  @ApiContract({ responses: { 200: Role } })
  @Get(':id')
  get(@Req() req: AuthedRequest, @Param('id') id: string): Promise<RoleView> {
    return this.roles.get(req.principal.orgId, idParam(id, 'Role'));
  }

  @RequirePolicy(MANAGE_ROLES)
  @ApiContract({ body: UpdateRoleSchema, responses: { 200: Role }, problems: ['conflict'] })
  @Patch(':id')
  update(@Req() req: AuthedRequest, @Param('id') id: string, @Body() body: unknown): Promise<RoleView> {
    return this.roles.update(req.principal, idParam(id, 'Role'), assertValid(UpdateRoleSchema, body, { what: 'role change' }));
  }

  @RequirePolicy(MANAGE_ROLES)
  @ApiContract({ responses: { 204: null }, problems: ['conflict'] })
  @Delete(':id')
  @HttpCode(204)
  remove(@Req() req: AuthedRequest, @Param('id') id: string): Promise<void> {
    return this.roles.remove(req.principal, idParam(id, 'Role'));
  }
}
