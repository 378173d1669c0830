import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Query, Req } from '@nestjs/common';
import { API_PREFIX, RequirePolicy, assertValid, ApiContract, CursorPageQuery } from '@custodian/platform';
import { idParam, pageOf, type AuthedRequest, type PageOf } from './directory.http';
import { CreateAssignmentSchema, PermissionSetBodySchema } from './directory.schemas';
import { PermissionSetsService, type AssignmentView, type PermissionSetView } from './permission-sets.service';
import { Assignment, CursorPage, PermissionSetAnswer } from '../identity.api-schemas';

const MANAGE_PERMISSIONS = { capabilities: ['manage_permissions'] } as const;

/** Permission sets (the policy library's shape) and their assignments to users or groups. */
@Controller(`${API_PREFIX}/permission-sets`)
export class PermissionSetsController {
  constructor(@Inject(PermissionSetsService) private readonly sets: PermissionSetsService) {}

  @RequirePolicy(MANAGE_PERMISSIONS)
  @ApiContract({ query: CursorPageQuery, responses: { 200: CursorPage(PermissionSetAnswer) } })
  @Get()
  list(@Req() req: AuthedRequest, @Query() q: Record<string, unknown>): Promise<PageOf<PermissionSetView>> {
    return this.sets.list(req.principal.orgId, pageOf(q));
  }

  @RequirePolicy(MANAGE_PERMISSIONS)
  @ApiContract({ body: PermissionSetBodySchema, responses: { 201: PermissionSetAnswer }, problems: ['conflict'] })
  @Post()
  create(@Req() req: AuthedRequest, @Body() body: unknown): Promise<PermissionSetView> {
    return this.sets.create(req.principal, assertValid(PermissionSetBodySchema, body, { what: 'permission set' }));
  }

  @RequirePolicy(MANAGE_PERMISSIONS)
  @ApiContract({ responses: { 200: PermissionSetAnswer } })
  @Get(':id')
  get(@Req() req: AuthedRequest, @Param('id') id: string): Promise<PermissionSetView> {
    return this.sets.get(req.principal.orgId, idParam(id, 'Permission set'));
  }

  /** Replaces the whole body (a permission set is one document). */
  @RequirePolicy(MANAGE_PERMISSIONS)
  @ApiContract({ body: PermissionSetBodySchema, responses: { 200: PermissionSetAnswer }, problems: ['conflict'] })
  @Put(':id')
  replace(@Req() req: AuthedRequest, @Param('id') id: string, @Body() body: unknown): Promise<PermissionSetView> {
    const input = assertValid(PermissionSetBodySchema, body, { what: 'permission set' });
    return this.sets.replace(req.principal, idParam(id, 'Permission set'), input);
  }

  @RequirePolicy(MANAGE_PERMISSIONS)
  @ApiContract({ responses: { 204: null }, problems: ['conflict'] })
  @Delete(':id')
  @HttpCode(204)
  remove(@Req() req: AuthedRequest, @Param('id') id: string): Promise<void> {
    return this.sets.remove(req.principal, idParam(id, 'Permission set'));
  }

  @RequirePolicy(MANAGE_PERMISSIONS)
  @ApiContract({ query: CursorPageQuery, responses: { 200: CursorPage(Assignment) } })
  @Get(':id/assignments')
  assignments(@Req() req: AuthedRequest, @Param('id') id: string, @Query() q: Record<string, unknown>): Promise<PageOf<AssignmentView>> {
    return this.sets.assignments(req.principal.orgId, idParam(id, 'Permission set'), pageOf(q));
  }

  @RequirePolicy(MANAGE_PERMISSIONS)
  @ApiContract({ body: CreateAssignmentSchema, responses: { 201: Assignment }, problems: ['conflict'] })
  @Post(':id/assignments')
  assign(@Req() req: AuthedRequest, @Param('id') id: string, @Body() body: unknown): Promise<AssignmentView> {
    const input = assertValid(CreateAssignmentSchema, body, { what: 'assignment' });
    return this.sets.assign(req.principal, idParam(id, 'Permission set'), input);
  }

  @RequirePolicy(MANAGE_PERMISSIONS)
  @ApiContract({ responses: { 204: null } })
  @Delete(':id/assignments/:assignmentId')
  @HttpCode(204)
  unassign(@Req() req: AuthedRequest, @Param('id') id: string, @Param('assignmentId') assignmentId: string): Promise<void> {
    return this.sets.unassign(req.principal, idParam(id, 'Permission set'), idParam(assignmentId, 'Assignment'));
  }
}
