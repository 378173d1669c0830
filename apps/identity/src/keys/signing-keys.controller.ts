import { Body, Controller, Get, Inject, Param, Post } from '@nestjs/common';
import { API_PREFIX, CustodianException, OutboxWriter, RequirePolicy, assertValid, ApiContract } from '@custodian/platform';
import { Type } from '@sinclair/typebox';
import { IdentityEvents } from '../events/identity-events.service';
import { SigningKeyService, type SigningKeyView } from './signing-key.service';
import { Items, SigningKey } from '../identity.api-schemas';

const KID = /^[A-Za-z0-9_-]{1,64}$/;
const RotateSchema = Type.Object(
  { activateAfterSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400 })) },
  { additionalProperties: false },
);

/** Operator endpoints for token signing keys (installation-wide; audited in the caller's org). */
@Controller(`${API_PREFIX}/signing-keys`)
export class SigningKeysController {
  constructor(
    @Inject(SigningKeyService) private readonly keys: SigningKeyService,
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
  ) {}

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
    return this.events.transaction(async (m) => {
      const key = await this.keys.rotate(m, input.activateAfterSeconds);
      await this.outbox.append(m, {
        orgId: null,
        action: 'identity.signing_key.rotated',
        outcome: 'success',
        target: { type: 'signing_key', id: key.kid },
        details: { activatesAt: key.activatesAt },
      });
      return key;
    });
  }

  @RequirePolicy({ capabilities: ['manage_settings'] })
  @ApiContract({ responses: { 201: SigningKey }, problems: ['conflict'] })
  @Post(':kid/retire')
  retire(@Param('kid') kid: string): Promise<SigningKeyView> {
    if (!KID.test(kid)) throw CustodianException.notFound('Signing key not found');
    return this.events.transaction(async (m) => {
      const key = await this.keys.retire(m, kid);
      await this.outbox.append(m, {
        orgId: null,
        action: 'identity.signing_key.retired',
        outcome: 'success',
        target: { type: 'signing_key', id: kid },
      });
      return key;
    });
  }
}
