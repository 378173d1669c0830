import { SetMetadata, applyDecorators } from '@nestjs/common';
import { INTEGRATION_CAPABILITIES, SYSTEM_CAPABILITIES, type Capability } from '@custodian/policy';

export const PUBLIC_ROUTE = 'custodian:public';
export const ROUTE_POLICY = 'custodian:policy';

/** The capabilities of R6 (docs/access-rules.md) that a route may require; the policy library owns the list. */
export const CAPABILITIES: readonly Capability[] = [...SYSTEM_CAPABILITIES, ...INTEGRATION_CAPABILITIES];
export type { Capability };

export interface RoutePolicy {
  /** All of these are required (on top of being signed in). */
  capabilities?: readonly Capability[];
  /** Why a route asks for no capability beyond sign-in: forces the author to say so. */
  reason?: string;
  /**
   * The route creates, changes or ends a credential (API keys, password, sessions). A delegated
   * (agent) principal is refused whatever it holds: an agent acts for its user, it never manages
   * the user's credentials. See docs/identity.md "Agent delegation".
   */
  credentialAdmin?: boolean;
  /**
   * The route makes a structural change directly (object definitions, sharing rules, bundles). An
   * agent that holds the capability (manage_metadata under `metadata:write`) proposes the change
   * through approvals instead; a delegated principal is refused here. See docs/approvals.md.
   */
  proposeThroughApprovals?: boolean;
}

/** Opts a route out of authentication. Every use is visible in the route inventory test. */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(PUBLIC_ROUTE, true);

/**
 * Declares who may call a route. A route with neither this nor @Public() is refused by the guard
 * and fails the route inventory test (deny by default, impossible to forget).
 */
export const RequirePolicy = (policy: RoutePolicy): MethodDecorator & ClassDecorator =>
  applyDecorators(SetMetadata(ROUTE_POLICY, Object.freeze({ ...policy })));
