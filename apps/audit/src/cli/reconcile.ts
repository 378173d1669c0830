/**
 * A9 reconciliation as an operator command: outbox ids minus audit ids, per service schema.
 *   node scripts/run-ts.cjs apps/audit/src/cli/reconcile.ts --database-url postgres://… \
 *        [--schemas identity,objects,agent_gateway,approvals,audit] [--grace-seconds 60]
 * Needs a connection that can read every service schema. Exit 1 when gaps or stuck rows exist.
 */
import { Client } from 'pg';
import { reconcile } from '../reconcile/reconcile';

async function main(argv: string[]): Promise<number> {
  const get = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const url = get('--database-url');
  if (!url) {
    process.stderr.write('--database-url is required\n');
    return 2;
  }
  const schemas = (get('--schemas') ?? 'identity,objects,agent_gateway,approvals,audit').split(',');
  const client = new Client({ connectionString: url, application_name: 'custodian-audit-reconcile' });
  await client.connect();
  try {
    const report = await reconcile(client, { schemas, graceMs: Number(get('--grace-seconds') ?? 60) * 1000 });
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    const stuck = Object.values(report.unpublished).reduce((a, b) => a + b, 0);
    return report.missing.length > 0 || stuck > 0 ? 1 : 0;
  } finally {
    await client.end();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`reconcile failed: ${(error as Error).message}\n`);
    process.exit(2);
  },
);
