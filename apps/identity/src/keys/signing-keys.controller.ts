import { Body, Controller, Get, Inject, Param, Post } from '@nestjs/common';
import { API_PREFIX, CustodianException, RequirePolicy, assertValid, ApiContract } from '@custodian/platform';
import { Type } from '@sinclair/typebox';
import { SigningKeyService, type SigningKeyView } from './signing-key.service';
import { Items, SigningKey } from '../identity.api-schemas';

const KID = /^[A-Za-z0-9_-]{1,64}$/;
const RotateSchema = Type.Object(
  { activateAfterSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400 })) },
  { additionalProperties: false },
);

/** Operator endpoints for token signing keys (installation-wide: audited with no org, the caller as the actor). */
@Controller(`${API_PREFIX}/signing-keys`)
export class SigningKeysController {
  constructor(@Inject(SigningKeyService) private readonly keys: SigningKeyService) {}

  @RequirePolicy({ capabilities: ['manage_settings'] })
  @ApiContract({ responses: { 200: Items(SigningKey) } })
  @Get()
  async list(): Promise<{ items: SigningKeyView[]; nextCursor: null }> {
    return { items: await this.keys.list(), nextCursor: null };
  }

  @RequirePolicy({ capabilities: ['manage_settings'] })
  @ApiContract({ body: RotateSchema, responses: { 201: SigningKey } })
  @Post('rotate')
  rotate(@Body() body: unknown): Promise<SigningKeyView> {
    const input = assertValid(RotateSchema, body ?? {}, { what: 'rotation request' });
    return this.keys.rotate(input.activateAfterSeconds);
  }

  @RequirePolicy({ capabilities: ['manage_settings'] })
  @ApiContract({ responses: { 201: SigningKey }, problems: ['conflict'] })
  @Post(':kid/retire')
  retire(@Param('kid') kid: string): Promise<SigningKeyView> {
    if (!KID.test(kid)) throw CustodianException.notFound('Signing key not found');
    return this.keys.retire(kid);
  }
}
