import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import type { Logger } from 'pino';
import { CustodianException } from '../errors/custodian.exception';
import { requestContext } from '../context/request-context';
import { PUBLIC_ROUTE, ROUTE_POLICY, type RoutePolicy } from './route-policy.decorator';
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
    private readonly logger: Logger,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return false;
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)) return true;
    const policy = this.reflector.getAllAndOverride<RoutePolicy | undefined>(ROUTE_POLICY, targets);
    if (!policy) {
      this.logger.error({ handler: `${context.getClass().name}.${context.getHandler().name}` }, 'route declares no policy; refused');
      throw CustodianException.forbidden('This route declares no access policy');
    }
    const request = context.switchToHttp().getRequest<Request>();
    const token = bearerToken(request.headers.authorization);
    if (!token) throw CustodianException.unauthenticated();
    const principal = await this.resolver.resolveBearer(token);
    const ctx = requestContext.current();
    if (ctx) ctx.principal = principal;
    (request as Request & { principal?: unknown }).principal = principal;
    const missing = (policy.capabilities ?? []).filter((c) => !principal.capabilities.includes(c));
    if (missing.length > 0) {
      // TODO(#3): delegate capability decisions to libs/policy's Decision once it lands.
      await this.resolver.auditDenied({ principal, route: `${request.method} ${request.route?.path ?? request.path}`, missing });
      throw CustodianException.forbidden('Missing capability', { missing });
    }
    return true;
  }
}

function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer ([A-Za-z0-9._~+/=-]{1,8192})$/.exec(header);
  return match?.[1];
}
