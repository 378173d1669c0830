import { ALWAYS, NEVER, anyOf, conditional, sqlOfPlan } from './sql-plan';

describe('SQL plans', () => {
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
