import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json';

/** Chains of events without an organization (bootstrap, system) share this chain id. */
export const SYSTEM_CHAIN_ID = '00000000-0000-0000-0000-000000000000';
/** The "previous hash" of sequence 1 in every chain. */
export const GENESIS_HASH = '0'.repeat(64);

export function chainIdOf(orgId: string | null | undefined): string {
  return orgId ?? SYSTEM_CHAIN_ID;
}

/**
 * row_hash = SHA-256 over `custodian-audit-v1\n<chainId>\n<seq>\n<prevHash>\n<canonical event>`,
 * hex. Binding chain id and sequence means a row cannot be moved to another place or chain.
 */
export function rowHash(chainId: string, seq: number, prevHash: string, canonicalEvent: string): string {
  return createHash('sha256').update(`custodian-audit-v1\n${chainId}\n${seq}\n${prevHash}\n${canonicalEvent}`).digest('hex');
}

export function eventHash(chainId: string, seq: number, prevHash: string, event: unknown): string {
  return rowHash(chainId, seq, prevHash, canonicalJson(event));
}
