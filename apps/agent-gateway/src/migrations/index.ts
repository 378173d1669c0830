import { Init1795311846902 } from './1795311846902-init';
import { AgentRuntime1795400000000 } from './1795400000000-agent-runtime';
import { AgentProfileProvider1795500000000 } from './1795500000000-agent-profile-provider';

/** In order; never edit one that has shipped — add a new one (scripts/generate-migration.ts). */
export const SERVICE_MIGRATIONS = [Init1795311846902, AgentRuntime1795400000000, AgentProfileProvider1795500000000];
