import type { Writable } from 'node:stream';
import type { CustodianClient } from '../packages/client/src';

type Json = Record<string, unknown>;

/** Server-kept bookkeeping that a bundle document does not carry. */
const BOOKKEEPING = new Set(['id', 'orgId', 'version', 'createdAt', 'updatedAt', 'createdBy', 'updatedBy', 'access']);

function strip(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(strip);
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value as Json)
        .filter(([k]) => !BOOKKEEPING.has(k))
        .map(([k, v]) => [k, strip(v)]),
    );
  return value;
}

async function allPages<T>(fetchPage: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor: string | null }>): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await fetchPage(cursor);
    out.push(...page.items);
    if (!page.nextCursor) return out;
    cursor = page.nextCursor;
  }
}

/** Called after each step of an export: `done` of `total` steps, and what was just read. */
export type ExportProgress = (done: number, total: number, note: string) => void;

/**
 * The org's configuration as a bundle document (objects, sharing rules, actions, roles, groups,
 * permission sets, approval policies) read through the API with the caller's rights; `bundle diff`
 * of the result against the same org shows no change for what the API round-trips.
 * The steps: the object list, then per object its sharing rules and its actions, then roles,
 * groups, permission sets and approval policies (each all of its pages).
 */
export async function exportBundle(api: CustodianClient, name: string, log: Writable, progress?: ExportProgress): Promise<Json> {
  const { items: objects } = await api.objectMetadataList();
  const total = 1 + 2 * objects.length + 4;
  let done = 0;
  const step = (note: string): void => progress?.(++done, total, note);
  step('objects');
  const sharingRules: Json = {};
  const actions: unknown[] = [];
  for (const object of objects as Json[]) {
    const objectName = String(object.name);
    const rules = (await api.sharingRulesList({ name: objectName })).items;
    if (rules.length) sharingRules[objectName] = strip(rules);
    step(`${objectName}: sharing rules`);
    actions.push(
      ...((await api.actionsList({ name: objectName })).items as unknown[]).map((a) => strip({ object: objectName, ...(a as Json) })),
    );
    step(`${objectName}: actions`);
  }
  const q = (cursor: string | undefined) => ({ query: { limit: '200', ...(cursor ? { cursor } : {}) } });
  const roles = await allPages((o) => api.rolesList(q(o)));
  step('roles');
  const nameOf = new Map(roles.map((r) => [r.id, r.name]));
  const groups = await allPages((o) => api.groupsList(q(o)));
  step('groups');
  const sets = await allPages((o) => api.permissionSetsList(q(o)));
  step('permission sets');
  const policies = (await api.approvalPoliciesList()).items;
  step('approval policies');
  log.write(
    `exported ${objects.length} objects, ${roles.length} roles, ${groups.length} groups, ${sets.length} permission sets, ${policies.length} approval policies\n`,
  );
  return {
    apiVersion: 'custodian.dev/v1',
    kind: 'Bundle',
    name,
    ...(objects.length ? { objects: strip(objects) } : {}),
    ...(Object.keys(sharingRules).length ? { sharingRules } : {}),
    ...(actions.length ? { actions } : {}),
    ...(roles.length
      ? { roles: roles.map((r) => ({ name: r.name, ...(r.parentId && nameOf.get(r.parentId) ? { parent: nameOf.get(r.parentId) } : {}) })) }
      : {}),
    ...(groups.length ? { groups: groups.map((g) => ({ name: g.name, ...(g.description ? { description: g.description } : {}) })) } : {}),
    ...(sets.length ? { permissionSets: sets.map((s) => strip(s.body)) } : {}),
    ...(policies.length ? { approvalPolicies: strip(policies) } : {}),
  };
}
