import { ALWAYS, NEVER, anyOf, conditional, planOfSql, sqlOfPlan } from './sql-plan';

describe('SQL plans', () => {
  it('reads constant predicates as always / never and anything else as a condition', () => {
    expect(planOfSql('TRUE')).toBe(ALWAYS);
    expect(planOfSql('FALSE')).toBe(NEVER);
    expect(planOfSql('"t"."a" = $1')).toEqual({ kind: 'conditional', sql: '"t"."a" = $1' });
  });

  it('writes plans back as SQL', () => {
    expect([ALWAYS, NEVER, conditional('x = $1')].map(sqlOfPlan)).toEqual(['TRUE', 'FALSE', 'x = $1']);
  });

  it('ORs plans: any always wins, nevers drop out, one condition stays bare, several are parenthesised', () => {
    expect(anyOf([conditional('a'), ALWAYS, NEVER])).toBe(ALWAYS);
    expect(anyOf([NEVER, NEVER])).toBe(NEVER);
    expect(anyOf([])).toBe(NEVER);
    expect(anyOf([NEVER, conditional('a')])).toEqual(conditional('a'));
    expect(anyOf([conditional('a'), NEVER, conditional('b')])).toEqual(conditional('(a OR b)'));
  });
});
