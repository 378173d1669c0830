import { isSafeName, type Decision } from '@custodian/policy';
import type { StoredObjectDefinition } from '../metadata/object-definition.schema';
import { buildListSql, type ListSpec } from './record-query';

export type BuiltList = Readonly<ReturnType<typeof buildListSql>>;

/** Statements kept per decision and definition; the map starts over when full. */
export const MAX_STATEMENTS_PER_DECISION = 32;
/** Longer list requests (big `where` documents) are built every time rather than kept. */
export const MAX_KEY_CHARS = 2048;

/**
 * The built list statement for a request seen before: `buildListSql` is a pure function of the
 * decision, the object definition, the org and the request, and the first two are immutable and
 * cached upstream (RequestDecisionService per credential, policy version and metadata stamp;
 * ObjectCatalogService per stamp). So the same list asked again by the same credential skips the
 * build — the policy row filter, the field checks (R5) and the SQL text, ~0.1 ms of a list
 * request on this machine. A request the build refused is never kept: it is refused again, by the
 * build, every time. Entries go with their decision (weak keys); the statements are frozen.
 */
export class ListStatementCache {
  private readonly byDecision = new WeakMap<Decision, WeakMap<StoredObjectDefinition, Map<string, BuiltList>>>();

  get(decision: Decision, def: StoredObjectDefinition, orgId: string, spec: ListSpec, opts: { guard?: boolean } = {}): BuiltList {
    const text = plainSpecKey(spec) ?? specKey(spec);
    const key = `${orgId}|${opts.guard ? 1 : 0}|${text}`;
    if (text === undefined || key.length > MAX_KEY_CHARS) return buildListSql(decision, def, orgId, spec, opts);
    let byDef = this.byDecision.get(decision);
    if (!byDef) this.byDecision.set(decision, (byDef = new WeakMap()));
    let statements = byDef.get(def);
    if (!statements) byDef.set(def, (statements = new Map()));
    const known = statements.get(key);
    if (known) return known;
    const built = buildListSql(decision, def, orgId, spec, opts);
    Object.freeze(built.params);
    Object.freeze(built.fields);
    if (statements.size >= MAX_STATEMENTS_PER_DECISION) statements.clear();
    statements.set(key, Object.freeze(built));
    return built;
  }
}

/**
 * The key of a request without `where` and `fields` (a plain page, the common list), written out
 * instead of serialised: every part buildListSql reads, each of a form that cannot run into the
 * next — names (object, order fields) are plain identifiers, order is asc|desc, limit and offset
 * are integers, and the cursor (any text) comes last. It starts with `p` where specKey's JSON
 * starts with `{`, so the two kinds of key never meet. Undefined for any other request.
 */
function plainSpecKey(spec: ListSpec): string | undefined {
  if (spec.where !== undefined || spec.fields !== undefined || !isSafeName(spec.object)) return undefined;
  if (!Number.isSafeInteger(spec.limit) || !Number.isSafeInteger(spec.offset)) return undefined;
  let order = '';
  for (const key of spec.orderBy) {
    if (!isSafeName(key.field) || (key.order !== 'asc' && key.order !== 'desc')) return undefined;
    order += `${key.field} ${key.order},`;
  }
  const cursor = spec.cursor === undefined ? '-' : typeof spec.cursor === 'string' ? `+${spec.cursor}` : undefined;
  if (cursor === undefined) return undefined;
  return `p|${spec.object}|${spec.limit}|${spec.offset}|${order}|${cursor}`;
}

/**
 * The request as a key, or undefined when JSON would not tell it apart from another one (a
 * non-finite number reads as null, an undefined array element as null, a Date as its string):
 * such a request is built every time instead.
 */
function specKey(spec: ListSpec): string | undefined {
  let exact = true;
  const text = JSON.stringify(spec, function (this: unknown, key: string, value: unknown): unknown {
    const original = key === '' ? value : (this as Record<string, unknown>)[key];
    if (!exactJson(original, this === spec)) exact = false;
    return value;
  });
  return exact ? text : undefined;
}

function exactJson(value: unknown, topLevel: boolean): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'undefined':
      return topLevel; // an optional part of the request that is absent
    case 'object': {
      if (value === null || Array.isArray(value)) return true;
      const proto = Object.getPrototypeOf(value) as unknown;
      return proto === Object.prototype || proto === null;
    }
    default:
      return false;
  }
}
