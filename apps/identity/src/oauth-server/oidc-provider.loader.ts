import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KeyObject } from 'node:crypto';

/*
 * The parts of oidc-provider (9.x, ESM-only, no bundled types) this server uses, typed here. The
 * package is loaded with require(): Node 20.19+ loads ES modules that way, and jest transforms it
 * (jest.config.cjs esmPackages).
 */

export interface OidcKoaContext {
  oidc: {
    route: string;
    params: Record<string, unknown>;
    client?: OidcClient;
    result?: { consent?: { grantId?: string } };
    provider: OidcProvider;
    entities: Record<string, { remainingTTL?: number } | undefined>;
  };
  method: string;
  path: string;
}

export interface OidcClient {
  clientId: string;
  clientAuthMethod?: string;
  clientSecret?: string;
  clientName?: string;
  redirectUris: string[];
  grantTypeAllowed(type: string): boolean;
}

export interface OidcToken {
  kind: string;
  grantId?: string;
  accountId?: string;
  clientId?: string;
  scope?: string;
  resourceServer?: unknown;
}

export interface OidcGrant {
  addOIDCScope(scope: string): void;
  addResourceScope(resource: string, scope: string): void;
  rejectOIDCScope(scope: string): void;
  rejectResourceScope(resource: string, scope: string): void;
  save(): Promise<string>;
}

export interface InteractionDetails {
  uid: string;
  prompt: { name: string; reasons: string[]; details: Record<string, unknown> };
  params: Record<string, unknown>;
  session?: { accountId?: string };
}

export interface OidcProvider {
  proxy: boolean;
  issuer: string;
  callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: Record<string, unknown>,
    opts?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>;
  Client: { find(id: string): Promise<OidcClient | undefined> };
  Grant: new (init: { accountId: string; clientId: string }) => OidcGrant;
  on(event: string, listener: (...args: unknown[]) => void): void;
}

/** An error oidc-provider turns into an OAuth error response (`error`, `error_description`, status). */
export type OidcErrorClass = new (description?: string) => Error;

export interface ExternalSigningKeyBase {
  kid: string;
  alg: string;
  keyObject(): KeyObject;
  sign(data: Uint8Array): Promise<Uint8Array>;
}

export interface OidcProviderModule {
  Provider: new (issuer: string, configuration: Record<string, unknown>) => OidcProvider;
  ExternalSigningKey: new () => ExternalSigningKeyBase;
  errors: { InvalidTarget: OidcErrorClass; InvalidGrant: OidcErrorClass; InvalidRequest: OidcErrorClass; AccessDenied: OidcErrorClass };
}

let loaded: OidcProviderModule | undefined;

/**
 * oidc-provider, loaded once. Its import prints "Unsupported runtime" on Node 20 (it tests for the
 * 22 LTS codename); Custodian runs it on Node 20.20 on purpose (this suite proves the flows), so that
 * one line is left out of stderr and everything else it might print stays.
 */
export function loadOidcProvider(): OidcProviderModule {
  if (loaded) return loaded;
  const warn = console.warn;
  console.warn = (...args: unknown[]): void => {
    if (typeof args[0] === 'string' && args[0].startsWith('oidc-provider WARNING: Unsupported runtime')) return;
    warn(...args);
  };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require('oidc-provider') as OidcProviderModule;
  } finally {
    console.warn = warn;
  }
  return loaded;
}
