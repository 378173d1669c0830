import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, type PrincipalSnapshot } from '@custodian/contracts';
import { CONFIG, CustodianException, OutboxWriter, PrincipalResolver, type CustodianConfig } from '@custodian/platform';
import { AGENT_SCOPES } from '@custodian/policy';
import { Type, type Static } from '@sinclair/typebox';
import { IdentityEvents } from '../events/identity-events.service';
import { AuthService } from './auth.service';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE_URN = 'urn:ietf:params:oauth:token-type:access_token';
/** Our own token-type URN for an API key used as the subject token. */
export const API_KEY_TOKEN_TYPE_URN = 'urn:custodian:token-type:api_key';

/** RFC 8693 parameters (JSON body), plus the agent's client id and display name. */
export const TokenExchangeRequestSchema = Type.Object(
  {
    grant_type: Type.Literal(TOKEN_EXCHANGE_GRANT),
    subject_token: Type.String({ minLength: 1, maxLength: 8192 }),
    subject_token_type: Type.Union([Type.Literal(ACCESS_TOKEN_TYPE_URN), Type.Literal(API_KEY_TOKEN_TYPE_URN)]),
    scope: Type.String({ minLength: 1, maxLength: 512 }),
    client_id: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' }),
    agent_name: Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\u0000-\\u001f\\u007f]+$' }),
    requested_token_type: Type.Optional(Type.Literal(ACCESS_TOKEN_TYPE_URN)),
    audience: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: false },
);

export interface TokenExchangeResponse {
  access_token: string;
  issued_token_type: typeof ACCESS_TOKEN_TYPE_URN;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
}

/**
 * Agent delegation (R7): a user's access token or API key becomes a delegated token with `sub` =
 * the user, `act.sub` = the agent client and `scope` = requested ∩ the agent scopes. It never
 * widens: the agent's effective permission is still the user's ∩ these scopes, a delegated token
 * cannot be exchanged again, and it dies with the subject's session or key.
 */
@Injectable()
export class TokenExchangeService {
  constructor(
    @Inject(PrincipalResolver) private readonly resolver: PrincipalResolver,
    @Inject(AuthService) private readonly auth: AuthService,
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(CONFIG) private readonly config: CustodianConfig,
  ) {}

  async exchange(input: Static<typeof TokenExchangeRequestSchema>): Promise<TokenExchangeResponse> {
    const isKey = input.subject_token_type === API_KEY_TOKEN_TYPE_URN;
    if (isKey !== input.subject_token.startsWith('cak_')) throw CustodianException.unauthenticated('Invalid subject token');
    const subject: PrincipalSnapshot = await this.resolver.resolveBearer(input.subject_token);
    const requested = [...new Set(input.scope.split(' ').filter(Boolean))];
    const unknown = requested.filter((s) => !(AGENT_SCOPES as readonly string[]).includes(s));
    const deny = async (reason: string, error: CustodianException): Promise<never> => {
      await this.events.transaction((m) =>
        this.outbox.append(m, {
          orgId: subject.orgId,
          action: 'auth.token_exchange',
          outcome: 'denied',
          actor: {
            userId: subject.userId,
            ...(subject.sessionId ? { sessionId: subject.sessionId } : {}),
            ...(subject.apiKeyId ? { apiKeyId: subject.apiKeyId } : {}),
          },
          target: { type: 'agent', id: input.client_id },
          details: { reason, requestedScopes: requested.slice(0, 8) },
        }),
      );
      throw error;
    };
    if (subject.agent)
      return deny('subject_is_delegated', new CustodianException(ErrorCode.BadRequest, 'A delegated token cannot be exchanged again'));
    if (!subject.capabilities.includes('agent_access'))
      return deny('missing_agent_access', CustodianException.forbidden('Missing capability', { missing: ['agent_access'] }));
    if (unknown.length > 0 || requested.length === 0) {
      return deny(
        'invalid_scope',
        new CustodianException(ErrorCode.ValidationFailed, 'Invalid scope', {
          issues: [{ path: '/scope', message: `allowed scopes: ${AGENT_SCOPES.join(' ')}` }],
        }),
      );
    }
    // RFC 8707: the only other audience issued is the MCP resource, so an agent token is either for
    // the REST API or for the agent gateway, never both; any other target is refused.
    if (input.audience !== undefined && input.audience !== this.config.auth.mcpResource) {
      return deny(
        'invalid_target',
        new CustodianException(ErrorCode.ValidationFailed, 'Invalid audience', {
          issues: [{ path: '/audience', message: `the only audience that can be requested is ${this.config.auth.mcpResource}` }],
        }),
      );
    }
    const audience = input.audience === undefined ? 'api' : 'mcp';
    const granted = AGENT_SCOPES.filter((s) => requested.includes(s));
    const scope = granted.join(' ');
    const token = await this.auth.accessToken(
      {
        sub: subject.userId,
        org: subject.orgId,
        ...(subject.sessionId ? { sid: subject.sessionId } : {}),
        ...(subject.apiKeyId ? { akid: subject.apiKeyId } : {}),
        act: { sub: input.client_id },
        agent_name: input.agent_name,
        scope,
      },
      undefined,
      audience,
    );
    await this.events.transaction((m) =>
      this.outbox.append(m, {
        orgId: subject.orgId,
        action: 'auth.token_exchange',
        outcome: 'success',
        actor: {
          userId: subject.userId,
          ...(subject.sessionId ? { sessionId: subject.sessionId } : {}),
          ...(subject.apiKeyId ? { apiKeyId: subject.apiKeyId } : {}),
        },
        target: { type: 'agent', id: input.client_id },
        details: { scope, agentName: input.agent_name, ...(input.audience !== undefined ? { audience: input.audience } : {}) },
      }),
    );
    return {
      access_token: token,
      issued_token_type: ACCESS_TOKEN_TYPE_URN,
      token_type: 'Bearer',
      expires_in: this.auth.accessTokenTtl(),
      scope,
    };
  }
}
