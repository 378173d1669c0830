/**
 * Offline verification of the audit log, straight from the database, against signed checkpoints.
 *
 *   node scripts/run-ts.cjs apps/audit/src/cli/verify.ts --database-url postgres://… \
 *        --checkpoint checkpoints.json [--public-key key.pem] [--schema audit] [--all]
 *
 * See verify-command.ts for the options and exit codes.
 */
import { runVerify } from './verify-command';

runVerify(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`verify failed: ${(error as Error).message}\n`);
    process.exit(2);
  },
);
