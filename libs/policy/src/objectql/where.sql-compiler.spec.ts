import { SqlParams } from '../sql/sql-params';
import { ALWAYS, NEVER, conditional } from '../sql/sql-plan';
import type { FieldType } from '../model/object-security.schema';
import type { WhereNode } from './where.ast';
import { parseWhere } from './where.parser';
import { compileWhereSql } from './where.sql-compiler';

const types = new Map<string, FieldType>([
  ['name', 'string'],
  ['amount', 'number'],
]);
const parse = (where: unknown): WhereNode => parseWhere(where, { typeOf: (f) => types.get(f) });
const compile = (node: WhereNode): ReturnType<typeof compileWhereSql> =>
  compileWhereSql(node, { params: new SqlParams(0), column: (f) => `t."${f}"` });
const plan = (where: unknown): ReturnType<typeof compileWhereSql> => compile(parse(where));

describe('the ObjectQL where compiler answers a typed plan', () => {
  it('is always / never for a constant filter, negations included', () => {
    expect(plan({ name: { $nin: [] } })).toBe(ALWAYS);
    expect(plan({ name: { $in: [] } })).toBe(NEVER);
    expect(plan({ $not: { name: { $in: [] } } })).toBe(ALWAYS);
    expect(compile({ kind: 'not', child: { kind: 'const', value: true } })).toBe(NEVER);
  });

  it('is a condition for anything else, with a constant inside AND / OR written as TRUE / FALSE', () => {
    expect(plan({ amount: { $gt: 5 } })).toEqual(conditional('(t."amount" > $1)'));
    expect(plan({ name: null })).toEqual(conditional('t."name" IS NULL'));
    // parseWhere folds constants away; a node built by hand keeps them, and they render as before.
    const unfolded: WhereNode = { kind: 'or', children: [{ kind: 'const', value: false }, parse({ amount: 1 })] };
    expect(compile(unfolded)).toEqual(conditional('(FALSE OR (t."amount" = $1))'));
    expect(compile({ kind: 'not', child: unfolded })).toEqual(conditional('(TRUE AND (t."amount" = $1) IS NOT TRUE)'));
  });
});
