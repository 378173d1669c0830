import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  Param,
  Patch,
  Post,
  Put,
  Query,
  Req,
  Res,
  UseFilters,
  applyDecorators,
} from '@nestjs/common';
import { CONFIG, RequirePolicy, type CustodianConfig, ApiContract, AnyObject } from '@custodian/platform';
import type { Response } from 'express';
import type { AuthedRequest } from '../directory/directory.http';
import { GROUP_FILTER_ATTRIBUTES, ScimGroupsService } from './scim-groups.service';
import { USER_FILTER_ATTRIBUTES, ScimUsersService } from './scim-users.service';
import { SCIM_CONTENT_TYPE, SCIM_PREFIX, ScimExceptionFilter, excludes, pageOfScim, parseFilter, patchOperations } from './scim.http';

/**
 * Provisioning by the org's identity provider. The IdP presents an ordinary API key of a user who
 * holds manage_users (create it with scopes ["manage_users"]); whatever it provisions lands in that
 * key's org. An agent's delegated token is refused: deactivating users ends credentials.
 */
const SCIM_POLICY = { capabilities: ['manage_users'], credentialAdmin: true } as const;

type Query = Record<string, unknown>;

function scim<T>(res: Response, body: T, status = 200): T {
  res.status(status).type(SCIM_CONTENT_TYPE);
  return body;
}

/** 201 with the new resource and its `Location` (meta.location). */
function created<T extends { meta?: unknown }>(res: Response, resource: T): T {
  res.setHeader('Location', String((resource.meta as { location: string }).location));
  return scim(res, resource, 201);
}

/**
 * One SCIM route: SCIM_POLICY, and the contract with SCIM's media type on the request body, the
 * answer (a resource or list as any object; none for 204) and the errors.
 */
function ScimRoute(status: 200 | 201 | 204, spec: { summary?: string; query?: true; body?: true } = {}): MethodDecorator {
  return applyDecorators(
    RequirePolicy(SCIM_POLICY),
    ApiContract({
      ...(spec.summary ? { summary: spec.summary } : {}),
      ...(spec.query ? { query: AnyObject } : {}),
      ...(spec.body ? { body: AnyObject, bodyType: SCIM_CONTENT_TYPE } : {}),
      responses: { [status]: status === 204 ? null : { contentType: SCIM_CONTENT_TYPE, schema: AnyObject } },
      errorContentType: SCIM_CONTENT_TYPE,
    }),
  );
}

@Controller(SCIM_PREFIX)
@UseFilters(ScimExceptionFilter)
export class ScimController {
  private readonly base: string;

  constructor(
    @Inject(ScimUsersService) private readonly users: ScimUsersService,
    @Inject(ScimGroupsService) private readonly groups: ScimGroupsService,
    @Inject(CONFIG) config: CustodianConfig,
  ) {
    // meta.location names the configured public URL, never the request's Host header.
    this.base = `${config.agentGateway.publicUrl}/${SCIM_PREFIX}`;
  }

  @ScimRoute(200, { summary: 'SCIM 2.0 (RFC 7644): list users', query: true })
  @Get('Users')
  async listUsers(@Req() req: AuthedRequest, @Res({ passthrough: true }) res: Response, @Query() q: Query): Promise<unknown> {
    const filter = parseFilter(q.filter, USER_FILTER_ATTRIBUTES);
    return scim(res, await this.users.list(req.principal, filter, pageOfScim(q), this.base));
  }

  @ScimRoute(201, { body: true })
  @Post('Users')
  async createUser(@Req() req: AuthedRequest, @Res({ passthrough: true }) res: Response, @Body() body: unknown): Promise<unknown> {
    return created(res, await this.users.create(req.principal, body, this.base));
  }

  @ScimRoute(200)
  @Get('Users/:id')
  async getUser(@Req() req: AuthedRequest, @Res({ passthrough: true }) res: Response, @Param('id') id: string): Promise<unknown> {
    return scim(res, await this.users.get(req.principal, id, this.base));
  }

  @ScimRoute(200, { body: true })
  @Put('Users/:id')
  async replaceUser(
    @Req() req: AuthedRequest,
    @Res({ passthrough: true }) res: Response,
    @Param('id') id: string,
    @Body() body: unknown,
  ): Promise<unknown> {
    return scim(res, await this.users.replace(req.principal, id, body, this.base));
  }

  @ScimRoute(200, { body: true })
  @Patch('Users/:id')
  async patchUser(
    @Req() req: AuthedRequest,
    @Res({ passthrough: true }) res: Response,
    @Param('id') id: string,
    @Body() body: unknown,
  ): Promise<unknown> {
    return scim(res, await this.users.patch(req.principal, id, patchOperations(body), this.base));
  }

  /** Deactivates (see ScimUsersService.deactivate). */
  @ScimRoute(204)
  @Delete('Users/:id')
  @HttpCode(204)
  deleteUser(@Req() req: AuthedRequest, @Param('id') id: string): Promise<void> {
    return this.users.deactivate(req.principal, id);
  }

  @ScimRoute(200, { summary: 'SCIM 2.0 (RFC 7644): list groups', query: true })
  @Get('Groups')
  async listGroups(@Req() req: AuthedRequest, @Res({ passthrough: true }) res: Response, @Query() q: Query): Promise<unknown> {
    const filter = parseFilter(q.filter, GROUP_FILTER_ATTRIBUTES);
    return scim(res, await this.groups.list(req.principal, filter, pageOfScim(q), !excludes(q, 'members'), this.base));
  }

  @ScimRoute(201, { body: true })
  @Post('Groups')
  async createGroup(@Req() req: AuthedRequest, @Res({ passthrough: true }) res: Response, @Body() body: unknown): Promise<unknown> {
    return created(res, await this.groups.create(req.principal, body, this.base));
  }

  @ScimRoute(200)
  @Get('Groups/:id')
  async getGroup(
    @Req() req: AuthedRequest,
    @Res({ passthrough: true }) res: Response,
    @Param('id') id: string,
    @Query() q: Query,
  ): Promise<unknown> {
    return scim(res, await this.groups.get(req.principal, id, !excludes(q, 'members'), this.base));
  }

  @ScimRoute(200, { body: true })
  @Put('Groups/:id')
  async replaceGroup(
    @Req() req: AuthedRequest,
    @Res({ passthrough: true }) res: Response,
    @Param('id') id: string,
    @Body() body: unknown,
  ): Promise<unknown> {
    return scim(res, await this.groups.replace(req.principal, id, body, this.base));
  }

  /** Okta and Entra ID accept 204 as well, but the resource lets them see the result without another GET. */
  @ScimRoute(200, { body: true })
  @Patch('Groups/:id')
  async patchGroup(
    @Req() req: AuthedRequest,
    @Res({ passthrough: true }) res: Response,
    @Param('id') id: string,
    @Body() body: unknown,
    @Query() q: Query,
  ): Promise<unknown> {
    return scim(res, await this.groups.patch(req.principal, id, patchOperations(body), this.base, !excludes(q, 'members')));
  }

  @ScimRoute(204)
  @Delete('Groups/:id')
  @HttpCode(204)
  deleteGroup(@Req() req: AuthedRequest, @Param('id') id: string): Promise<void> {
    return this.groups.remove(req.principal, id);
  }
}
