import { PolicyError } from '../errors/policy.error';

/** Keys that could reach an object's prototype chain; refused anywhere in any input (O6). */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Object, field, rule, app and role names: lowercase identifiers that are safe as SQL identifiers. */
export const NAME_PATTERN = '^[a-z][a-z0-9_]{0,62}$';
const NAME_RE = new RegExp(NAME_PATTERN);

export function isSafeName(name: unknown): name is string {
  return typeof name === 'string' && NAME_RE.test(name) && !FORBIDDEN_KEYS.has(name);
}

export function assertSafeName(name: unknown, what: string): asserts name is string {
  if (!isSafeName(name)) throw new PolicyError('invalid_name', { what, name: typeof name === 'string' ? name.slice(0, 64) : typeof name });
}

/**
 * Walks any JSON-like value iteratively (no recursion, so a 10,000-deep document cannot blow the
 * stack) and refuses prototype-polluting keys at any depth. Own keys are read with Object.keys, so a
 * `__proto__` produced by JSON.parse (an own property) is seen.
 */
export function assertNoForbiddenKeys(value: unknown, maxNodes = 1_000_000): void {
  const stack: unknown[] = [value];
  let seen = 0;
  while (stack.length > 0) {
    const current = stack.pop();
    if (current === null || typeof current !== 'object') continue;
    if (++seen > maxNodes) throw new PolicyError('invalid_input', { reason: 'too_many_nodes', limit: maxNodes });
    if (Array.isArray(current)) {
      for (const item of current) stack.push(item);
      continue;
    }
    for (const key of Object.keys(current)) {
      if (FORBIDDEN_KEYS.has(key)) throw new PolicyError('forbidden_key', { key });
      stack.push((current as Record<string, unknown>)[key]);
    }
  }
}

/** Own-property read that never consults the prototype chain. */
export function ownValue(record: object, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(record, key) ? (record as Record<string, unknown>)[key] : undefined;
}
