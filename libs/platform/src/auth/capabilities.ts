import { policySnapshot, type PrincipalSnapshot } from '@custodian/contracts';
import { compileCatalog, compileDecision, type Capability, type Decision } from '@custodian/policy';

/** Capability checks need no object metadata. */
const NO_OBJECTS = compileCatalog([]);

/**
 * A decision for capability checks only — the policy library decides them (R6, narrowed for agents
 * by R7), whether at the route guard or inside a service. Compiled per call on purpose: two
 * credentials of one user carry different capabilities under one policy version.
 */
export function capabilityDecision(principal: PrincipalSnapshot): Decision {
  return compileDecision(policySnapshot(principal), NO_OBJECTS);
}

/** The capabilities of `required` the principal does not hold, in the order given. */
export function missingCapabilities(principal: PrincipalSnapshot, required: readonly Capability[]): Capability[] {
  if (required.length === 0) return [];
  const decision = capabilityDecision(principal);
  return required.filter((c) => !decision.hasCapability(c));
}
