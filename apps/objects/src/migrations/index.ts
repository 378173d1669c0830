import { Init1795311846234 } from './1795311846234-init';
import { RecordsAndDirectory1795315243292 } from './1795315243292-records-and-directory';
import { ObjectActions1795319866057 } from './1795319866057-object-actions';

/** In order; never edit one that has shipped — add a new one (scripts/generate-migration.ts). */
export const SERVICE_MIGRATIONS = [Init1795311846234, RecordsAndDirectory1795315243292, ObjectActions1795319866057];
