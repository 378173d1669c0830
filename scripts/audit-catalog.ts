/**
 * A developer build step, not an operator command: writes docs/audit-events.md from the catalog
 * (a unit test, apps/audit/src/catalog/render-catalog.spec.ts, fails while the file is stale):
 *
 *   node scripts/run-ts.cjs scripts/audit-catalog.ts
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { renderAuditCatalog } from '../apps/audit/src/catalog/render-catalog';

writeFileSync(path.resolve(__dirname, '../docs/audit-events.md'), renderAuditCatalog());
process.stdout.write('wrote docs/audit-events.md\n');
