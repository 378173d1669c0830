import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Query, Req } from '@nestjs/common';
import { API_PREFIX, RequirePolicy, assertValid, ApiContract, CursorPageQuery } from '@custodian/platform';
import { Type } from '@sinclair/typebox';
import { idParam, pageOf, type AuthedRequest, type PageOf } from '../directory/directory.http';
import { NoStore } from '../auth/no-store';
import { ApiKeysService, type ApiKeyView } from './api-keys.service';
import { ApiKey, ApiKeyCreated, CursorPage } from '../identity.api-schemas';

const CreateApiKeySchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\u0000-\\u001f\\u007f]+$' }),
    scopes: Type.Optional(Type.Array(Type.String({ pattern: '^[a-z_]{1,64}$' }), { maxItems: 16, uniqueItems: true })),
    expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);

@Controller(`${API_PREFIX}/api-keys`)
export class ApiKeysController {
  constructor(@Inject(ApiKeysService) private readonly keys: ApiKeysService) {}

  /** The plaintext key is in this response and nowhere else, ever. */
  @RequirePolicy({ capabilities: ['api_access'], credentialAdmin: true })
  @ApiContract({
    summary: 'Create an API key (the plaintext key is in this answer only)',
    body: CreateApiKeySchema,
    responses: { 201: ApiKeyCreated },
  })
  @Post()
  @NoStore()
  create(@Req() req: AuthedRequest, @Body() body: unknown): Promise<ApiKeyView & { key: string }> {
    return this.keys.create(req.principal, assertValid(CreateApiKeySchema, body, { what: 'API key' }));
  }

  @RequirePolicy({ reason: 'anyone signed in may list their own keys; manage_api_keys shows the whole org' })
  @ApiContract({ query: CursorPageQuery, responses: { 200: CursorPage(ApiKey) } })
  @Get()
  list(@Req() req: AuthedRequest, @Query() q: Record<string, unknown>): Promise<PageOf<ApiKeyView>> {
    return this.keys.list(req.principal, pageOf(q));
  }

  @RequirePolicy({ reason: 'anyone signed in may revoke their own keys; manage_api_keys any key of the org', credentialAdmin: true })
  @ApiContract({ responses: { 204: null } })
  @Delete(':id')
  @HttpCode(204)
  revoke(@Req() req: AuthedRequest, @Param('id') id: string): Promise<void> {
    return this.keys.revoke(req.principal, idParam(id, 'API key'));
  }
}
