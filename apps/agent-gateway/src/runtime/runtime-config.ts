import type { CustodianConfig } from '@custodian/platform';

/**
 * The agent runtime's process settings: the `agentRuntime` section of the typed config (validated
 * at boot there). Per-org settings (provider, egress, retention) live in the settings store instead.
 */
export type RuntimeConfig = CustodianConfig['agentRuntime'];
