/**
 * Applies a bundle file (JSON or YAML) to a running Custodian:
 *   CUSTODIAN_TOKEN=… node scripts/run-ts.cjs apps/objects/src/cli/apply-bundle.ts <file> [--url http://127.0.0.1:3000] [--dry-run]
 * (or CUSTODIAN_EMAIL / CUSTODIAN_PASSWORD to sign in). Roles, groups and permission sets are
 * applied through identity's API (created when missing, updated when different); grantees named
 * `{type, name}` in sharing rules are resolved to ids; then objects applies the rest atomically.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { canonical } from '../bundles/bundle.service';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the document is validated by the server
type Json = any;

export interface CliReport {
  identity: Array<{ kind: string; name: string; change: 'create' | 'update' | 'unchanged' }>;
  objects: Json;
}

async function api(base: string, token: string, method: string, path: string, body?: unknown): Promise<Json> {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : undefined;
}

async function all(base: string, token: string, path: string): Promise<Json[]> {
  const items: Json[] = [];
  for (let offset = 0; offset <= 10_000; offset += 200) {
    const page = await api(base, token, 'GET', `${path}?limit=200&offset=${offset}`);
    items.push(...page.items);
    if (page.nextOffset === undefined) break;
  }
  return items;
}

export async function applyBundleDocument(base: string, token: string, text: string, dryRun = false): Promise<CliReport> {
  const doc: Json = parseYaml(text, { maxAliasCount: 0, uniqueKeys: true });
  const report: CliReport = { identity: [], objects: undefined };
  const roleIds = new Map<string, string>((await all(base, token, '/roles')).map((r: Json) => [r.name, r.id]));
  const roleParents = new Map<string, string | null>((await all(base, token, '/roles')).map((r: Json) => [r.name, r.parentId]));
  const pending = [...(doc.roles ?? [])];
  for (let guard = 0; pending.length > 0 && guard < 1000; guard++) {
    const role = pending.shift();
    if (role.parent && !roleIds.has(role.parent)) {
      pending.push(role);
      continue;
    }
    const parentId = role.parent ? roleIds.get(role.parent)! : null;
    if (!roleIds.has(role.name)) {
      report.identity.push({ kind: 'role', name: role.name, change: 'create' });
      roleIds.set(
        role.name,
        dryRun ? `dry-run:${role.name}` : (await api(base, token, 'POST', '/roles', { name: role.name, parentId })).id,
      );
    } else if ((roleParents.get(role.name) ?? null) !== parentId) {
      report.identity.push({ kind: 'role', name: role.name, change: 'update' });
      if (!dryRun) await api(base, token, 'PATCH', `/roles/${roleIds.get(role.name)}`, { parentId });
    } else report.identity.push({ kind: 'role', name: role.name, change: 'unchanged' });
  }
  const groupIds = new Map<string, string>((await all(base, token, '/groups')).map((g: Json) => [g.name, g.id]));
  for (const group of doc.groups ?? []) {
    if (groupIds.has(group.name)) {
      report.identity.push({ kind: 'group', name: group.name, change: 'unchanged' });
      continue;
    }
    report.identity.push({ kind: 'group', name: group.name, change: 'create' });
    groupIds.set(group.name, dryRun ? `dry-run:${group.name}` : (await api(base, token, 'POST', '/groups', group)).id);
  }
  const sets = new Map<string, Json>((await all(base, token, '/permission-sets')).map((s: Json) => [s.name, s]));
  for (const set of doc.permissionSets ?? []) {
    const current = sets.get(set.name);
    if (!current) {
      report.identity.push({ kind: 'permission_set', name: set.name, change: 'create' });
      if (!dryRun) await api(base, token, 'POST', '/permission-sets', set);
    } else if (canonical(current.body) !== canonical(set)) {
      report.identity.push({ kind: 'permission_set', name: set.name, change: 'update' });
      if (!dryRun) await api(base, token, 'PUT', `/permission-sets/${current.id}`, set);
    } else report.identity.push({ kind: 'permission_set', name: set.name, change: 'unchanged' });
  }
  const resolve = (grantee: Json): Json => {
    if (!grantee || grantee.id !== undefined || grantee.name === undefined) return grantee;
    const id = grantee.type === 'group' ? groupIds.get(grantee.name) : grantee.type === 'user' ? undefined : roleIds.get(grantee.name);
    if (!id) throw new Error(`unknown ${grantee.type} ${grantee.name}`);
    // A dry-run cannot name ids that do not exist yet; a placeholder uuid keeps the document valid.
    return { type: grantee.type, id: id.startsWith('dry-run:') ? '00000000-0000-4000-8000-000000000000' : id };
  };
  const sharingRules: Json = {};
  for (const [object, rules] of Object.entries<Json[]>(doc.sharingRules ?? {})) {
    sharingRules[object] = rules.map((r) => ({
      ...r,
      sharedWith: resolve(r.sharedWith),
      ...(r.ownedBy ? { ownedBy: resolve(r.ownedBy) } : {}),
    }));
  }
  const { roles: _r, groups: _g, permissionSets: _p, ...rest } = doc;
  report.objects = await api(base, token, 'POST', '/bundles/apply', { bundle: { ...rest, sharingRules }, dryRun });
  return report;
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
