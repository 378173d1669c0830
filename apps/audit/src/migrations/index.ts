import { Init1795311848548 } from './1795311848548-init';

/** In order; never edit one that has shipped — add a new one (scripts/generate-migration.ts). */
export const SERVICE_MIGRATIONS = [Init1795311848548];
