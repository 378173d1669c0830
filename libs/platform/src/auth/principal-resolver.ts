import { ErrorCode, GetJwks, GetPrincipalSnapshot, type PrincipalSnapshot } from '@custodian/contracts';
import type { Logger } from 'pino';
import type { Bus } from '../bus/bus';
import { CustodianException } from '../errors/custodian.exception';
import { TokenVerifier, type TokenVerifierOptions } from './token-verifier';

/**
 * Turns a bearer credential into a principal snapshot: the token is verified locally, then
 * identity is asked (over the bus) for the snapshot, which also proves the session is still live.
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
    const claims = await this.verifier.verify(token);
    try {
      return await this.bus.request(GetPrincipalSnapshot, {
        userId: claims.sub,
        orgId: claims.org,
        ...(claims.sid ? { sessionId: claims.sid } : {}),
      });
    } catch (error) {
      if (error instanceof CustodianException && (error.code === ErrorCode.NotFound || error.code === ErrorCode.Unauthenticated)) {
        throw CustodianException.unauthenticated('Invalid or expired access token');
      }
      if (error instanceof CustodianException && error.code === ErrorCode.InvalidMessage) {
        this.logger.error({ err: error }, 'principal snapshot rejected');
      }
      throw error;
    }
  }
}
