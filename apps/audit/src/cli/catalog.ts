/** Writes docs/audit-events.md from the catalog: node scripts/run-ts.cjs apps/audit/src/cli/catalog.ts */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { renderAuditCatalog } from '../catalog/render-catalog';

writeFileSync(path.resolve(__dirname, '../../../../docs/audit-events.md'), renderAuditCatalog());
process.stdout.write('wrote docs/audit-events.md\n');
