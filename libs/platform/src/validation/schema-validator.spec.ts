import { ErrorCode } from '@custodian/contracts';
import { Type } from '@sinclair/typebox';
import { CustodianException } from '../errors/custodian.exception';
import { assertValid, validate } from './schema-validator';

const Schema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    name: Type.String({ minLength: 1, maxLength: 50 }),
    at: Type.String({ format: 'date-time' }),
    count: Type.Optional(Type.Integer({ minimum: 0 })),
    note: Type.Optional(Type.String({ pattern: '^[a-z]+$' })),
  },
  { additionalProperties: false },
);

const valid = { id: '0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b', name: 'Acme', at: '2030-01-01T12:00:00Z' };
const SECRET = 'sk_live_S3CR3T-do-not-echo-4f9a';

function failure(value: unknown): CustodianException {
  try {
    assertValid(Schema, value);
  } catch (error) {
    expect(error).toBeInstanceOf(CustodianException);
    return error as CustodianException;
  }
  throw new Error('expected assertValid to throw');
}

function issues(error: CustodianException): Array<{ path: string; message: string }> {
  return (error.details as { issues: Array<{ path: string; message: string }> }).issues;
}

describe('assertValid', () => {
  it('returns the value when it is valid', () => {
    const value = { ...valid, count: 3 };
    expect(assertValid(Schema, value)).toBe(value);
  });

  it('throws validation_failed with the path of the problem', () => {
    const error = failure({ ...valid, count: -1 });
    expect(error.code).toBe(ErrorCode.ValidationFailed);
    expect(error.message).toBe('Invalid input');
    expect(issues(error)).toEqual([{ path: '/count', message: expect.any(String) }]);
  });

  it.each([
    ['a wrong-typed field', { ...valid, count: SECRET }, '/count'],
    ['a uuid field', { ...valid, id: SECRET }, '/id'],
    ['a date-time field', { ...valid, at: SECRET }, '/at'],
    ['a pattern field', { ...valid, note: SECRET }, '/note'],
    ['a too-long field', { ...valid, name: SECRET.repeat(10) }, '/name'],
  ])('never echoes the offending value (%s)', (_what, value, path) => {
    const error = failure(value);
    expect(issues(error).map((i) => i.path)).toContain(path);
    expect(JSON.stringify(error.details)).not.toContain(SECRET);
    expect(error.message).not.toContain(SECRET);
  });

  it('enforces additionalProperties: false, naming an identifier-like key but never its value', () => {
    const error = failure({ ...valid, org_id: SECRET });
    expect(error.code).toBe(ErrorCode.ValidationFailed);
    expect(issues(error)[0]).toEqual({ path: '/org_id', message: 'unknown property "org_id"' });
    expect(JSON.stringify(error.details)).not.toContain(SECRET);
  });

  it.each([['not-a-uuid'], ['0190a1b2c3d47e5f8a6b1c2d3e4f5a6b'], ['0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6'], ['']])(
    'enforces format uuid (%p)',
    (id) => {
      expect(failure({ ...valid, id }).code).toBe(ErrorCode.ValidationFailed);
    },
  );

  it.each([['2030-01-01'], ['yesterday'], ['2030-13-01T00:00:00Z'], ['2030-01-01T25:00:00Z'], ['2030-01-01 12:00']])(
    'enforces format date-time (%p)',
    (at) => {
      expect(failure({ ...valid, at }).code).toBe(ErrorCode.ValidationFailed);
    },
  );

  it('does not coerce types', () => {
    expect(failure({ ...valid, count: '3' }).code).toBe(ErrorCode.ValidationFailed);
    expect(failure({ ...valid, name: 5 }).code).toBe(ErrorCode.ValidationFailed);
  });

  it('rejects non-objects and missing required fields', () => {
    for (const value of [null, undefined, 'x', 1, []]) expect(failure(value).code).toBe(ErrorCode.ValidationFailed);
    expect(issues(failure({ id: valid.id, at: valid.at }))[0].path).toBe('/');
  });

  it('uses the code and wording the caller asks for', () => {
    try {
      assertValid(Schema, {}, { code: ErrorCode.InvalidMessage, what: 'bus message' });
      throw new Error('expected a failure');
    } catch (error) {
      expect(error).toMatchObject({ code: ErrorCode.InvalidMessage, message: 'Invalid bus message' });
    }
  });

  it('validate() reports instead of throwing, with at most 10 issues', () => {
    expect(validate(Schema, valid)).toEqual({ ok: true, value: valid });
    const result = validate(Schema, { ...valid, id: 'x' });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.issues.length).toBeLessThanOrEqual(10);
  });
});

describe('schemas with an $id', () => {
  it('validates a schema on its own after another schema that embeds it was compiled', () => {
    const inner = Type.Object({ n: Type.Integer() }, { $id: 'https://custodian.dev/schemas/test-inner.json', additionalProperties: false });
    const outer = Type.Object({ inner }, { additionalProperties: false });
    expect(validate(outer, { inner: { n: 1 } }).ok).toBe(true);
    expect(validate(inner, { n: 2 }).ok).toBe(true);
    expect(validate(inner, { n: 'x' }).ok).toBe(false);
  });
});

describe('issues that say what to fix', () => {
  const Owner = Type.Object(
    {
      type: Type.Literal('owner'),
      ownedBy: Type.Object(
        { type: Type.Union([Type.Literal('group'), Type.Literal('role'), Type.Literal('role_and_subordinates')]), id: Type.String() },
        { additionalProperties: false },
      ),
    },
    { additionalProperties: false },
  );
  const Criteria = Type.Object({ type: Type.Literal('criteria'), criteria: Type.Object({}) }, { additionalProperties: false });
  const Rule = Type.Union([Criteria, Owner]);
  const fail = (schema: Parameters<typeof validate>[0], value: unknown): Array<{ path: string; message: string }> => {
    const result = validate(schema, value);
    if (result.ok) throw new Error('expected a failure');
    return result.issues;
  };

  it('names the allowed values of a union of literals nested in the branch the caller meant', () => {
    expect(fail(Rule, { type: 'owner', ownedBy: { type: 'team', id: 'x' } })).toEqual([
      { path: '/ownedBy/type', message: 'must be one of: group, role, role_and_subordinates' },
    ]);
  });

  it('names the discriminator values when no branch matches', () => {
    expect(fail(Rule, { type: 'everyone' })).toEqual([{ path: '/type', message: 'must be one of: criteria, owner' }]);
  });

  it("reports the meant branch's own problem (a missing property), not the other branches'", () => {
    expect(fail(Rule, { type: 'owner' })).toEqual([{ path: '/', message: "must have required property 'ownedBy'" }]);
  });

  it('names an unknown property when it is an identifier, and never echoes an arbitrary key', () => {
    expect(fail(Owner, { type: 'owner', ownedBy: { type: 'role', id: 'r' }, version: 3 })).toEqual([
      { path: '/version', message: 'unknown property "version"' },
    ]);
    const weird = `${SECRET} with spaces`;
    const issues = fail(Owner, { type: 'owner', ownedBy: { type: 'role', id: 'r' }, [weird]: 1 });
    expect(issues).toEqual([{ path: '/', message: 'must NOT have additional properties' }]);
  });

  it('names the allowed values of an enum', () => {
    expect(fail(Type.Object({ level: Type.Union([Type.Literal('read'), Type.Literal('edit')]) }), { level: 'own' })).toEqual([
      { path: '/level', message: 'must be one of: read, edit' },
    ]);
  });
});
