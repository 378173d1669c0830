/**
 * Applies a bundle file (JSON or YAML) to a running Custodian:
 *   CUSTODIAN_TOKEN=… node scripts/run-ts.cjs apps/objects/src/cli/apply-bundle.ts <file> [--url http://127.0.0.1:3000] [--dry-run]
 * (or CUSTODIAN_EMAIL / CUSTODIAN_PASSWORD to sign in). The whole document goes to
 * `POST /api/v1/bundles/apply`, which applies every section (identity, objects, approvals) and
 * answers one diff; the server parses the text (aliases refused, unique keys).
 */
import { readFileSync } from 'node:fs';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the answer is the server's JSON
type Json = any;

export interface CliReport {
  dryRun: boolean;
  digest: string;
  changes: Array<{ kind: string; name: string; change: 'create' | 'update' | 'unchanged'; before?: Json; after?: Json }>;
}

export async function applyBundleDocument(base: string, token: string, text: string, dryRun = false): Promise<CliReport> {
  const res = await fetch(`${base}/api/v1/bundles/apply`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ document: text, dryRun }),
  });
  const body = await res.text();
  if (!res.ok) throw new Error(`POST /bundles/apply: ${res.status} ${body.slice(0, 2000)}`);
  return JSON.parse(body) as CliReport;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const file = args.find((a) => !a.startsWith('--'));
  const urlIndex = args.indexOf('--url');
  const base = (urlIndex >= 0 ? args[urlIndex + 1] : process.env.CUSTODIAN_URL) ?? 'http://127.0.0.1:3000';
  if (!file) throw new Error('usage: apply-bundle.ts <file> [--url URL] [--dry-run]');
  let token = process.env.CUSTODIAN_TOKEN;
  if (!token) {
    const res = await fetch(`${base}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: process.env.CUSTODIAN_EMAIL, password: process.env.CUSTODIAN_PASSWORD }),
    });
    if (!res.ok) throw new Error(`login failed: ${res.status}`);
    token = ((await res.json()) as { accessToken: string }).accessToken;
  }
  const report = await applyBundleDocument(base, token, readFileSync(file, 'utf8'), args.includes('--dry-run'));
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(1);
  });
}
