import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, type JWK } from 'jose';

/**
 * A real OpenID Provider (panva's oidc-provider, certified) on loopback for tests: authorization
 * code + PKCE, discovery, JWKS, back-channel logout. Browser-less: the login "page" signs in the
 * account named by the authorization request's `login_hint` at once, and grants are given without a
 * consent screen. Tests can rewrite the next ID token (claims and/or the signing key) to prove the
 * relying party refuses it.
 *
 * oidc-provider is ESM-only; jest transforms it to CommonJS and Node 20.19+ requires it natively.
 */

/** An account at the test IdP: `sub` plus whatever claims the ID token should carry. */
export interface IdpAccount {
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  groups?: string[];
  [claim: string]: unknown;
}

/** Client metadata as oidc-provider takes it (RFC 7591 names). */
export interface IdpClient {
  client_id: string;
  client_secret?: string;
  redirect_uris: string[];
  token_endpoint_auth_method?: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';
  /** Inline keys do not pass oidc-provider's plain-object check under jest (structuredClone's realm): use jwks_uri. */
  jwks_uri?: string;
  backchannel_logout_uri?: string;
  backchannel_logout_session_required?: boolean;
  [metadata: string]: unknown;
}

export interface IdTokenRewrite {
  /** New claims from the issued ones. */
  claims?: (claims: Record<string, unknown>) => Record<string, unknown>;
  /** Sign with a key the IdP never published (a forged token). */
  foreignKey?: boolean;
}

export interface TestIdp {
  issuer: string;
  accounts: Map<string, IdpAccount>;
  /** The next ID token the token endpoint issues is rewritten and re-signed (one shot). */
  rewriteNextIdToken(rewrite: IdTokenRewrite): void;
  /** A logout token signed by the IdP's key (or a foreign one), for direct back-channel tests. */
  signLogoutToken(claims: Record<string, unknown>, opts?: { foreignKey?: boolean; typ?: string }): Promise<string>;
  stop(): Promise<void>;
}

interface KoaContext {
  path: string;
  method: string;
  body: unknown;
  req: unknown;
  res: unknown;
  oidc?: unknown;
}
interface InteractionDetails {
  prompt: { name: string };
  params: Record<string, string | undefined>;
  session?: { accountId?: string };
}
interface GrantLike {
  addOIDCScope(scope: string): void;
  save(): Promise<string>;
}
interface ProviderLike {
  use(mw: (ctx: KoaContext, next: () => Promise<void>) => Promise<void>): void;
  callback(): (req: unknown, res: unknown) => void;
  interactionDetails(req: unknown, res: unknown): Promise<InteractionDetails>;
  interactionFinished(req: unknown, res: unknown, result: Record<string, unknown>, opts?: Record<string, unknown>): Promise<void>;
  Grant: new (init: { accountId: string; clientId: string }) => GrantLike;
  on(event: string, fn: (...args: unknown[]) => void): void;
}
type ProviderCtor = new (issuer: string, config: Record<string, unknown>) => ProviderLike;

function rsaKey(): { privateKey: KeyObject; kid: string } {
  return { privateKey: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, kid: randomUUID() };
}

async function privateJwk(key: { privateKey: KeyObject; kid: string }): Promise<JWK> {
  return { ...(await exportJWK(key.privateKey)), kid: key.kid, alg: 'RS256', use: 'sig' };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** Starts the IdP on a free loopback port with the given clients and accounts. */
export async function startTestIdp(opts: { clients: IdpClient[]; accounts?: IdpAccount[] }): Promise<TestIdp> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Provider = (require('oidc-provider') as { default: ProviderCtor }).default;
  const server = createServer();
  const port = await listen(server);
  const issuer = `http://127.0.0.1:${port}`;
  const accounts = new Map((opts.accounts ?? []).map((a) => [a.sub, a]));
  const signing = rsaKey();
  const foreign = rsaKey();
  let rewrite: IdTokenRewrite | undefined;

  const provider = new Provider(issuer, {
    clients: opts.clients.map((c) => ({ grant_types: ['authorization_code'], response_types: ['code'], ...c })),
    jwks: { keys: [await privateJwk(signing)] },
    cookies: { keys: [randomUUID()] },
    // Scope claims go into the ID token itself (the relying party reads claims from it).
    conformIdTokenClaims: false,
    claims: { openid: ['sub', 'sid'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    scopes: ['openid', 'email', 'profile', 'groups'],
    findAccount: (_ctx: unknown, id: string) => {
      const account = accounts.get(id);
      return account ? { accountId: id, claims: () => ({ ...account }) } : undefined;
    },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    // No consent screen: the grant covers what the client asked for.
    loadExistingGrant: async (ctx: {
      oidc: {
        client: { clientId: string };
        session: { accountId: string; grantIdFor(id: string): string | undefined };
        params: { scope?: string };
        provider: ProviderLike & { Grant: { find(id: string): Promise<unknown> } };
      };
    }) => {
      const existing = ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (existing) return ctx.oidc.provider.Grant.find(existing);
      const grant = new ctx.oidc.provider.Grant({ accountId: ctx.oidc.session.accountId, clientId: ctx.oidc.client.clientId });
      grant.addOIDCScope(ctx.oidc.params.scope ?? 'openid');
      await grant.save();
      return grant;
    },
    features: {
      devInteractions: { enabled: false },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        // Only the form (action + xsrf): the test submits it.
        logoutSource: (ctx: KoaContext, form: string) => {
          ctx.body = form;
        },
      },
    },
    pkce: { required: () => true },
  });

  provider.use(async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path.startsWith('/interaction/')) {
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      const accountId = details.params.login_hint;
      if (details.prompt.name === 'login') {
        const result =
          accountId && accounts.has(accountId)
            ? { login: { accountId } }
            : { error: 'access_denied', error_description: 'unknown test account' };
        await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
        return;
      }
      const grant = new provider.Grant({ accountId: details.session?.accountId ?? '', clientId: details.params.client_id ?? '' });
      grant.addOIDCScope(details.params.scope ?? 'openid');
      await provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
      return;
    }
    await next();
    const body = ctx.body as { id_token?: string } | undefined;
    if (rewrite && ctx.path === '/token' && body && typeof body === 'object' && typeof body.id_token === 'string') {
      const { claims = (c) => c, foreignKey = false } = rewrite;
      rewrite = undefined;
      const issued = JSON.parse(Buffer.from(body.id_token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
      const key = foreignKey ? foreign : signing;
      ctx.body = {
        ...body,
        id_token: await new SignJWT(claims(issued)).setProtectedHeader({ alg: 'RS256', kid: signing.kid }).sign(key.privateKey),
      };
    }
  });
  server.on('request', provider.callback());

  return {
    issuer,
    accounts,
    rewriteNextIdToken(r) {
      rewrite = r;
    },
    async signLogoutToken(claims, o = {}) {
      const key = o.foreignKey ? foreign : signing;
      return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: signing.kid, typ: o.typ ?? 'logout+jwt' }).sign(key.privateKey);
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A browser without a browser: follows redirects by hand and keeps each origin's cookies, so a
 * test can walk the authorization code flow (relying party → IdP → back) with fetch.
 */
export class TestBrowser {
  private readonly jars = new Map<string, Map<string, string>>();

  cookies(origin: string): Map<string, string> {
    let jar = this.jars.get(origin);
    if (!jar) this.jars.set(origin, (jar = new Map()));
    return jar;
  }

  async request(url: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<Response> {
    const origin = new URL(url).origin;
    const jar = this.cookies(origin);
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, {
      method: init.method ?? 'GET',
      redirect: 'manual',
      headers: { ...(cookie ? { cookie } : {}), ...init.headers },
      body: init.body,
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=thu, 01 jan 1970/i.test(a));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    return res;
  }

  /** Follows redirects from `url` until one leads to a URL `stop` accepts; returns that URL (not fetched). */
  async followUntil(url: string, stop: (next: URL) => boolean, maxHops = 15): Promise<URL> {
    let current = url;
    for (let hop = 0; hop < maxHops; hop++) {
      const res = await this.request(current);
      const location = res.headers.get('location');
      if (!location || res.status < 300 || res.status >= 400) {
        const text = await res.text();
        // An IdP error page: its message is in the body, after the styles.
        const body = text.includes('<body>') ? text.slice(text.indexOf('<body>')).replace(/<[^>]+>/g, ' ') : text;
        throw new Error(`expected a redirect from ${current}, got ${res.status}: ${body.replace(/\s+/g, ' ').slice(0, 500)}`);
      }
      const next = new URL(location, current);
      if (stop(next)) return next;
      current = next.toString();
    }
    throw new Error(`no redirect reached the stop condition within ${maxHops} hops`);
  }
}
