import { AuthenticateApiKey, ErrorCode, GetJwks, GetPrincipalSnapshot, type PrincipalSnapshot } from '@custodian/contracts';
import type { Logger } from 'pino';
import type { Bus } from '../bus/bus';
import { CustodianException } from '../errors/custodian.exception';
import { TokenVerifier, type AccessTokenClaims, type TokenVerifierOptions } from './token-verifier';

/** API keys are recognisable by this prefix: `cak_<public id>_<secret>` (docs/identity.md). */
export const API_KEY_PREFIX = 'cak_';
const DELEGATION_CLIENT = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

/**
 * Turns a bearer credential into a principal snapshot. Access tokens are verified locally, then
 * identity is asked (over the bus) for the snapshot, which also proves the session is still live —
 * so a revocation is refused by the very next request on every service (R10). API keys are checked
 * by identity, the only holder of their keyed hashes.
 */
export class PrincipalResolver {
  private readonly verifier: TokenVerifier;

  constructor(
    private readonly bus: Bus,
    opts: TokenVerifierOptions,
    private readonly logger: Logger,
  ) {
    this.verifier = new TokenVerifier(opts, () => bus.request(GetJwks, {}), logger);
  }

  async resolveBearer(token: string): Promise<PrincipalSnapshot> {
    if (token.startsWith(API_KEY_PREFIX)) return this.ask(() => this.bus.request(AuthenticateApiKey, { key: token }), 'Invalid API key');
    const claims = await this.verifier.verify(token);
    const delegation = delegationOf(claims);
    if (delegation === 'invalid') throw CustodianException.unauthenticated('Invalid or expired access token');
    return this.ask(
      () =>
        this.bus.request(GetPrincipalSnapshot, {
          userId: claims.sub,
          orgId: claims.org,
          ...(claims.sid ? { sessionId: claims.sid } : {}),
          ...(claims.akid ? { apiKeyId: claims.akid } : {}),
          ...(delegation ? { delegation } : {}),
        }),
      'Invalid or expired access token',
    );
  }

  private async ask(call: () => Promise<PrincipalSnapshot>, refused: string): Promise<PrincipalSnapshot> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof CustodianException && (error.code === ErrorCode.NotFound || error.code === ErrorCode.Unauthenticated)) {
        throw CustodianException.unauthenticated(refused);
      }
      if (error instanceof CustodianException && error.code === ErrorCode.InvalidMessage) {
        this.logger.error({ err: error }, 'principal snapshot rejected');
      }
      throw error;
    }
  }
}

/** The RFC 8693 delegation of an agent token (`act.sub`, `scope`, `agent_name`), if any. */
function delegationOf(claims: AccessTokenClaims): { clientId: string; name: string; scopes: string[] } | undefined | 'invalid' {
  const act = (claims as { act?: unknown }).act;
  if (act === undefined) return undefined;
  const clientId = typeof act === 'object' && act !== null ? (act as { sub?: unknown }).sub : undefined;
  const scope = (claims as { scope?: unknown }).scope;
  const name = (claims as { agent_name?: unknown }).agent_name;
  if (typeof clientId !== 'string' || !DELEGATION_CLIENT.test(clientId) || typeof scope !== 'string' || scope.length > 512)
    return 'invalid';
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) return 'invalid';
  const scopes = scope.split(' ').filter(Boolean);
  if (scopes.length > 8) return 'invalid';
  return { clientId, name, scopes };
}
