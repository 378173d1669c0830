import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ErrorCode } from '@custodian/contracts';
import type { Request } from 'express';
import type { Logger } from 'pino';
import { CustodianException } from '../errors/custodian.exception';
import { requestContext } from '../context/request-context';
import { PUBLIC_ROUTE, ROUTE_POLICY, type RoutePolicy } from './route-policy.decorator';
import { missingCapabilities } from './capabilities';
import { markDenialAudited, rateLimited, type DenialAuditor } from './denial-auditor';
import type { PrincipalResolver } from './principal-resolver';

/**
 * The global guard: a route runs only if it is @Public() or its @RequirePolicy() is satisfied.
 * Anything else — including a route someone forgot to annotate — is refused.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly resolver: PrincipalResolver,
    private readonly denials: DenialAuditor,
    private readonly logger: Logger,
  ) {}

  /** A route's declarations, read once per handler and class (decorators are fixed once the app is built). */
  private readonly declared = new WeakMap<object, WeakMap<object, { isPublic: boolean; policy: RoutePolicy | undefined }>>();

  private declarationsOf(handler: object, cls: object): { isPublic: boolean; policy: RoutePolicy | undefined } {
    let byClass = this.declared.get(handler);
    if (!byClass) this.declared.set(handler, (byClass = new WeakMap()));
    let found = byClass.get(cls);
    if (!found) {
      const targets = [handler as () => unknown, cls as () => unknown];
      found = {
        isPublic: Boolean(this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)),
        policy: this.reflector.getAllAndOverride<RoutePolicy | undefined>(ROUTE_POLICY, targets),
      };
      byClass.set(cls, found);
    }
    return found;
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return false;
    const { isPublic, policy } = this.declarationsOf(context.getHandler(), context.getClass());
    if (isPublic) return true;
    if (!policy) {
      this.logger.error({ handler: `${context.getClass().name}.${context.getHandler().name}` }, 'route declares no policy; refused');
      throw CustodianException.forbidden('This route declares no access policy');
    }
    const request = context.switchToHttp().getRequest<Request>();
    const token = bearerToken(request.headers.authorization);
    if (!token) throw CustodianException.unauthenticated();
    const principal = await this.resolver.resolveBearer(token, minPolicyVersion(request.headers[POLICY_VERSION_HEADER]));
    const ctx = requestContext.current();
    if (ctx) ctx.principal = principal;
    (request as Request & { principal?: unknown }).principal = principal;
    if (policy.proposeThroughApprovals && principal.agent) {
      // Structural changes by an agent wait for a human: it files them as pending actions instead.
      await this.denials.record({
        principal,
        route: `${request.method} ${request.route?.path ?? request.path}`,
        missing: [],
        layer: 'agent_scope',
        controller: context.getClass(),
      });
      throw markDenialAudited(
        CustodianException.forbidden('An agent proposes structural changes through approvals (POST /api/v1/approvals)', {
          reason: 'propose_through_approvals',
        }),
      );
    }
    if (policy.credentialAdmin && principal.agent) {
      // A delegated token acts for its user; minting, changing or ending the user's credentials is not delegated.
      await this.denials.record({
        principal,
        route: `${request.method} ${request.route?.path ?? request.path}`,
        missing: [],
        layer: 'agent_scope',
        controller: context.getClass(),
      });
      throw markDenialAudited(
        CustodianException.forbidden('An agent cannot create, change or end credentials', { reason: 'delegated_credential' }),
      );
    }
    const required = policy.capabilities ?? [];
    // The policy library decides (R6, narrowed for agents by R7), per credential: capabilities.ts.
    const missing = missingCapabilities(principal, required);
    if (missing.length > 0) {
      const verdict = await this.denials.record({
        principal,
        route: `${request.method} ${request.route?.path ?? request.path}`,
        missing,
        controller: context.getClass(),
      });
      // A credential over its refusal budget is told to slow down; the refusal is counted all the same.
      if (verdict.limited) throw markDenialAudited(rateLimited(verdict.retryAfterSeconds));
      throw markDenialAudited(CustodianException.forbidden('Missing capability', { missing }));
    }
    return true;
  }
}

/** A client that made a change may send the policy version it returned; nothing older decides its request (R10). */
export const POLICY_VERSION_HEADER = 'custodian-policy-version';

function minPolicyVersion(header: string | string[] | undefined): number {
  if (header === undefined) return 0;
  if (typeof header !== 'string' || !/^[0-9]{1,15}$/.test(header))
    throw new CustodianException(ErrorCode.ValidationFailed, 'Invalid Custodian-Policy-Version header', {
      issues: [{ path: '/headers/custodian-policy-version', message: 'a non-negative integer' }],
    });
  return Number(header);
}

function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  // The auth scheme is case-insensitive (RFC 7235 §2.1, RFC 6750 §2.1); the token itself is not.
  const match = /^[Bb][Ee][Aa][Rr][Ee][Rr] ([A-Za-z0-9._~+/=-]{1,8192})$/.exec(header);
  return match?.[1];
}
