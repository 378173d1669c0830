import { Init1795311848548 } from './1795311848548-init';
import { HashChain1795313476105 } from './1795313476105-hash-chain';
import { DeadLetterGuard1795319818017 } from './1795319818017-dead-letter-guard';

/** In order; never edit one that has shipped — add a new one (scripts/generate-migration.ts). */
export const SERVICE_MIGRATIONS = [Init1795311848548, HashChain1795313476105, DeadLetterGuard1795319818017];
