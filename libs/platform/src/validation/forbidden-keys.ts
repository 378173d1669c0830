import { ErrorCode } from '@custodian/contracts';
import { CustodianException } from '../errors/custodian.exception';

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Rejects prototype-pollution keys anywhere in a parsed JSON value (QUALITY O6) and bounds the
 * nesting depth, before the value reaches any other code. Iterative, so depth cannot blow the stack.
 */
export function assertSafeJson(value: unknown, { maxDepth = 64 } = {}): void {
  const stack: Array<{ v: unknown; depth: number; path: string }> = [{ v: value, depth: 0, path: '$' }];
  while (stack.length > 0) {
    const { v, depth, path } = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > maxDepth) {
      throw new CustodianException(ErrorCode.BadRequest, `Input nested deeper than ${maxDepth} levels`, { path });
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) stack.push({ v: v[i], depth: depth + 1, path: `${path}[${i}]` });
      continue;
    }
    for (const key of Object.keys(v)) {
      if (FORBIDDEN.has(key)) {
        throw new CustodianException(ErrorCode.ForbiddenKey, `The key "${key}" is not allowed in input`, { path });
      }
      stack.push({ v: (v as Record<string, unknown>)[key], depth: depth + 1, path: `${path}.${key}` });
    }
  }
}
