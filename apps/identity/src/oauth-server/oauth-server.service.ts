import { createHmac, randomBytes, type KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { CONFIG, SERVICE_DATA_SOURCE, type CustodianConfig } from '@custodian/platform';
import { AGENT_SCOPES } from '@custodian/policy';
import type { DataSource } from 'typeorm';
import { SessionService } from '../auth/session.service';
import type { KeyVault } from '../keys/key-vault';
import { KEY_VAULT, SigningKeyService } from '../keys/signing-key.service';
import { OAuthConsentsService } from './oauth-consents.service';
import { OAuthStore, oauthRequest } from './oauth-store';
import { loadOidcProvider, type OidcClient, type OidcKoaContext, type OidcProvider, type OidcToken } from './oidc-provider.loader';
import { renderErrorPage } from './consent-page';

/** Where the authorization server lives under the public URL; its issuer is `<public URL>/oauth`. */
export const OAUTH_MOUNT = '/oauth';
/** The OIDC scopes a client may also ask for (they add nothing to what the token can do at /mcp). */
const OIDC_SCOPES = ['openid', 'offline_access'];

/**
 * Custodian as the OAuth 2.1 authorization server of its MCP endpoint (MCP authorization
 * 2025-11-25), on oidc-provider: RFC 8414 metadata, authorization code with PKCE (S256 only, always
 * required), dynamic client registration (RFC 7591), resource indicators (RFC 8707: the MCP resource
 * is the only resource, and a request must name it), refresh-token rotation, revocation (RFC 7009).
 *
 * The access tokens are the gateway's delegated agent tokens: the grant's user as `sub`, the client
 * as `act.sub`, the consented agent scopes, the MCP resource as `aud`, identity's issuer, signed by
 * identity's current key through an external signing key (the private key stays in
 * SigningKeyService), bound (`sid`) to the session the consent created. One provider instance per
 * signing key: a key rotation builds the next one.
 */
@Injectable()
export class OAuthServerService implements OnModuleInit {
  private current:
    { kid: string; provider: OidcProvider; callback: (req: IncomingMessage, res: ServerResponse) => Promise<void> } | undefined;
  private building: Promise<void> | undefined;
  readonly issuer: string;
  private readonly cookieKey: string;

  constructor(
    @Inject(CONFIG) private readonly config: CustodianConfig,
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(KEY_VAULT) private readonly vault: KeyVault,
    @Inject(SigningKeyService) private readonly keys: SigningKeyService,
    @Inject(SessionService) private readonly sessions: SessionService,
    @Inject(OAuthConsentsService) private readonly consents: OAuthConsentsService,
  ) {
    this.issuer = `${config.agentGateway.publicUrl}${OAUTH_MOUNT}`;
    this.cookieKey = createHmac('sha256', config.secrets.masterKey!).update('oauth-server:cookies').digest('base64url');
  }

  onModuleInit(): void {
    // Loaded at start, so a broken install fails the start rather than the first sign-in.
    loadOidcProvider();
  }

  /** The provider that signs with the key that signs now. */
  async provider(): Promise<OidcProvider> {
    const { kid, publicKey } = await this.keys.signingKey();
    if (this.current?.kid !== kid) {
      this.building ??= (async () => {
        const provider = this.build(kid, publicKey);
        this.current = { kid, provider, callback: provider.callback() };
      })().finally(() => (this.building = undefined));
      await this.building;
    }
    return this.current!.provider;
  }

  /**
   * Hands a request to oidc-provider. `path` is the path below the mount (e.g. `/token`); the
   * provider sees the installation's public URL as its origin whatever Host the request carried.
   */
  async handle(req: IncomingMessage & { originalUrl?: string }, res: ServerResponse, path: string, body?: Buffer): Promise<void> {
    await this.provider();
    const url = new URL(this.config.agentGateway.publicUrl);
    const query = req.url?.includes('?') ? req.url.slice(req.url.indexOf('?')) : '';
    req.originalUrl = `${OAUTH_MOUNT}${path}${query}`;
    req.url = `${path}${query}`;
    req.headers['x-forwarded-host'] = url.host;
    req.headers['x-forwarded-proto'] = url.protocol.slice(0, -1);
    const endpoint = path === '/token' ? 'token' : path === '/token/revocation' ? 'revocation' : 'other';
    await oauthRequest.run({ endpoint }, () => this.current!.callback(unparsed(req, body), res));
  }

  private build(kid: string, publicKey: KeyObject): OidcProvider {
    const { Provider, ExternalSigningKey, errors } = loadOidcProvider();
    const keys = this.keys;
    const signingKey = new (class extends ExternalSigningKey {
      constructor() {
        super();
        this.kid = kid;
        this.alg = 'EdDSA';
      }
      override keyObject(): KeyObject {
        return publicKey;
      }
      override async sign(data: Uint8Array): Promise<Uint8Array> {
        return keys.signJwsInput(kid, data);
      }
    })();
    const mcpResource = this.config.auth.mcpResource;
    const accessTtl = this.config.auth.accessTokenTtlSeconds;
    const refreshTtl = this.config.auth.refreshTokenTtlSeconds;
    const hash = (value: string): string => this.sessions.keyedHash(value);
    const consents = this.consents;
    const hooks = {
      grantIsLive: (grantId: string) => consents.grantIsLive(grantId),
      grantEnded: (grantId: string) => consents.grantEnded(grantId),
      clientRegistered: (clientId: string, metadata: Record<string, unknown>) => consents.clientRegistered(clientId, metadata),
    };
    const provider = new Provider(this.issuer, {
      adapter: (model: string) => new OAuthStore(model, this.ds, hash, this.vault, hooks),
      jwks: { keys: [signingKey] },
      clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post'],
      clientDefaults: {
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
        id_token_signed_response_alg: 'EdDSA',
      },
      enabledJWA: {
        idTokenSigningAlgValues: ['EdDSA'],
        clientAuthSigningAlgValues: ['EdDSA', 'ES256', 'RS256'],
      },
      responseTypes: ['code'],
      pkce: { required: () => true },
      scopes: [...OIDC_SCOPES, ...AGENT_SCOPES],
      claims: { openid: ['sub'] },
      cookies: {
        keys: [this.cookieKey],
        long: { httpOnly: true, sameSite: 'lax' },
        short: { httpOnly: true, sameSite: 'lax' },
      },
      features: {
        devInteractions: { enabled: false },
        registration: { enabled: true, idFactory: () => `mcp_${randomBytes(18).toString('base64url')}` },
        // RFC 7009 §2.1: only the client a token was issued to may revoke it.
        revocation: {
          enabled: true,
          allowedPolicy: (_ctx: unknown, client: OidcClient, token: OidcToken) => token.clientId === client.clientId,
        },
        resourceIndicators: {
          enabled: true,
          // RFC 8707: the request must name the resource, and the MCP endpoint is the only one.
          defaultResource: (_ctx: unknown, _client: unknown, oneOf?: string) => {
            if (oneOf) return oneOf;
            throw new errors.InvalidTarget(`the resource parameter is required (${mcpResource})`);
          },
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx: unknown, resource: string) => {
            if (resource !== mcpResource) throw new errors.InvalidTarget(`the only resource is ${mcpResource}`);
            return {
              scope: AGENT_SCOPES.join(' '),
              audience: mcpResource,
              accessTokenTTL: accessTtl,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg: 'EdDSA' } },
            };
          },
        },
        externalSigningSupport: { enabled: true, ack: 'experimental-01' },
        rpInitiatedLogout: { enabled: false },
        userinfo: { enabled: false },
        introspection: { enabled: false },
        pushedAuthorizationRequests: { enabled: false },
        // A DPoP-bound token would be accepted as a plain bearer at /mcp: do not issue any.
        dPoP: { enabled: false },
        claimsParameter: { enabled: false },
      },
      ttl: {
        AccessToken: accessTtl,
        AuthorizationCode: 60,
        IdToken: accessTtl,
        Interaction: 600,
        Session: 600,
        Grant: refreshTtl,
        // A rotated refresh token never outlives the first one of its grant (nor the consent's session).
        RefreshToken: (ctx: OidcKoaContext | undefined) => ctx?.oidc?.entities.RotatedRefreshToken?.remainingTTL ?? refreshTtl,
      },
      expiresWithSession: () => false,
      issueRefreshToken: (_ctx: unknown, client: OidcClient) => client.grantTypeAllowed('refresh_token'),
      rotateRefreshToken: () => true,
      // Every authorization asks for the password again: only the grant this interaction created counts.
      loadExistingGrant: async (ctx: OidcKoaContext) => {
        const grantId = ctx.oidc.result?.consent?.grantId;
        return grantId
          ? (ctx.oidc.provider as unknown as { Grant: { find(id: string): Promise<unknown> } }).Grant.find(grantId)
          : undefined;
      },
      interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `${OAUTH_MOUNT}/interaction/${interaction.uid}` },
      findAccount: (_ctx: unknown, sub: string) => ({ accountId: sub, claims: () => ({ sub }) }),
      extraTokenClaims: async (ctx: OidcKoaContext, token: OidcToken) => {
        if (token.kind !== 'AccessToken' || !token.grantId) return undefined;
        const grantType = typeof ctx.oidc.params.grant_type === 'string' ? ctx.oidc.params.grant_type : 'authorization_code';
        const claims = await consents.claimsFor(token.grantId, grantType, token.scope ?? '');
        if (!claims) throw new errors.InvalidGrant('the grant has ended');
        return claims;
      },
      formats: {
        customizers: {
          // The gateway verifies identity's issuer (config.auth.issuer), exactly as for exchanged agent tokens.
          jwt: (_ctx: unknown, _token: unknown, jwt: { payload: Record<string, unknown> }) => {
            jwt.payload.iss = this.config.auth.issuer;
          },
        },
      },
      renderError: (
        ctx: { type: string; body: string; set(h: string, v: string): void },
        out: { error: string; error_description?: string },
      ) => {
        const page = renderErrorPage(out.error, out.error_description);
        ctx.type = 'html';
        ctx.set('content-security-policy', `default-src 'none'; style-src 'nonce-${page.nonce}'; base-uri 'none'; frame-ancestors 'none'`);
        ctx.set('cache-control', 'no-store');
        ctx.body = page.html;
      },
    });
    provider.proxy = true;
    return provider;
  }
}

/**
 * The host's JSON body parser has already read a JSON request (dynamic client registration); the
 * provider reads bodies itself and would warn about (and fall back to) the parsed one. It gets the
 * same JSON as a fresh stream instead — parsed and checked by the host's limits and forbidden-key
 * rule first (R8, O6), with a content-length that matches. `body`: a form this server already read
 * (the revocation endpoint), passed on as it came.
 */
function unparsed(req: IncomingMessage & { body?: unknown }, body?: Buffer): IncomingMessage {
  if (body === undefined && (req.readable || req.body === undefined)) return req;
  const raw = body ?? Buffer.from(JSON.stringify(req.body));
  const stream = Readable.from([raw]) as Readable & Record<string, unknown>;
  return Object.assign(stream, {
    headers: { ...req.headers, 'content-length': String(raw.length) },
    rawHeaders: req.rawHeaders,
    method: req.method,
    url: req.url,
    originalUrl: (req as { originalUrl?: string }).originalUrl,
    httpVersion: req.httpVersion,
    httpVersionMajor: req.httpVersionMajor,
    httpVersionMinor: req.httpVersionMinor,
    socket: req.socket,
    connection: req.socket,
  }) as unknown as IncomingMessage;
}
