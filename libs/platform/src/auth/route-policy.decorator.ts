import { SetMetadata, applyDecorators } from '@nestjs/common';

export const PUBLIC_ROUTE = 'custodian:public';
export const ROUTE_POLICY = 'custodian:policy';

/** The capabilities of DESIGN.md R6 that a route may require. */
export const CAPABILITIES = [
  'manage_users',
  'manage_roles',
  'manage_permissions',
  'manage_metadata',
  'manage_sharing',
  'manage_settings',
  'manage_api_keys',
  'view_audit',
  'manage_audit',
  'approve_actions',
  'view_all_data',
  'modify_all_data',
  'api_access',
  'agent_access',
  'mcp_access',
] as const;
export type Capability = (typeof CAPABILITIES)[number];

export interface RoutePolicy {
  /** All of these are required (on top of being signed in). */
  capabilities?: readonly Capability[];
  /** Why a route asks for no capability beyond sign-in: forces the author to say so. */
  reason?: string;
}

/** Opts a route out of authentication. Every use is visible in the route inventory test. */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(PUBLIC_ROUTE, true);

/**
 * Declares who may call a route. A route with neither this nor @Public() is refused by the guard
 * and fails the route inventory test (deny by default, impossible to forget).
 */
export const RequirePolicy = (policy: RoutePolicy): MethodDecorator & ClassDecorator =>
  applyDecorators(SetMetadata(ROUTE_POLICY, Object.freeze({ ...policy })));
