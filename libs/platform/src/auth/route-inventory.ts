import { RequestMethod, type INestApplicationContext } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { PUBLIC_ROUTE, ROUTE_POLICY, type RoutePolicy } from './route-policy.decorator';

export interface RouteInfo {
  controller: string;
  handler: string;
  method: string;
  path: string;
  access: 'public' | 'policy' | 'undeclared';
  policy?: RoutePolicy;
}

/** Every HTTP route of an application with the access it declares (used by the deny-by-default test). */
export function collectRoutes(app: INestApplicationContext): RouteInfo[] {
  const discovery = app.get(DiscoveryService);
  const scanner = app.get(MetadataScanner);
  const reflector = app.get(Reflector);
  const routes: RouteInfo[] = [];
  for (const wrapper of discovery.getControllers()) {
    const instance = wrapper.instance as object | undefined;
    const type = wrapper.metatype as (new (...args: never[]) => unknown) | undefined;
    if (!instance || !type) continue;
    const bases = asPaths(Reflect.getMetadata(PATH_METADATA, type) as string | string[] | undefined);
    const prototype = Object.getPrototypeOf(instance) as Record<string, unknown>;
    for (const name of scanner.getAllMethodNames(prototype)) {
      const handler = prototype[name] as (...args: unknown[]) => unknown;
      const path = Reflect.getMetadata(PATH_METADATA, handler) as string | string[] | undefined;
      if (path === undefined) continue;
      const method = RequestMethod[Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod] ?? 'GET';
      const targets = [handler, type];
      const isPublic = reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets) === true;
      const policy = reflector.getAllAndOverride<RoutePolicy | undefined>(ROUTE_POLICY, targets);
      // Nest serves every combination of a controller path and a handler path as its own route.
      for (const base of bases) {
        for (const sub of asPaths(path)) {
          routes.push({
            controller: type.name,
            handler: name,
            method,
            path: joinPath(base, sub),
            access: isPublic ? 'public' : policy ? 'policy' : 'undeclared',
            ...(policy ? { policy } : {}),
          });
        }
      }
    }
  }
  return routes;
}

function asPaths(value: string | string[] | undefined): string[] {
  if (value === undefined) return [''];
  return Array.isArray(value) ? (value.length > 0 ? value : ['']) : [value];
}

function joinPath(base: string, sub: string): string {
  return `/${[base, sub].filter(Boolean).join('/')}`.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
}
