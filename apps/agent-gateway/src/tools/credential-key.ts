import type { PrincipalSnapshot } from '@custodian/contracts';

/**
 * One credential as the gateway counts it (rate, session cap, session binding): the user's session
 * or API key, and the agent acting through it. A refreshed delegated token keeps the same key.
 */
export function credentialKey(p: PrincipalSnapshot): string {
  return [p.orgId, p.userId, p.apiKeyId ?? p.sessionId ?? '-', p.agent?.clientId ?? '-'].join(':');
}
