import {
  compileCatalog,
  compileDecision,
  createSqlSchema,
  DecisionCache,
  evaluateWhere,
  InMemoryAccessFacts,
  parseWhere,
  NEVER,
  PolicyError,
  conditional,
  sqlOfPlan,
  type PrincipalSnapshot,
} from '@custodian/policy';

const catalog = compileCatalog([
  {
    name: 'account',
    sharingModel: 'private',
    fields: [
      { name: 'name', type: 'string' },
      { name: 'phone', type: 'string' },
      { name: 'amount', type: 'number' },
      { name: 'ssn', type: 'string', sensitive: true },
    ],
    sharingRules: [
      {
        name: 'big deals',
        type: 'criteria',
        criteria: { amount: { $gte: 100 } },
        sharedWith: { type: 'group', id: 'g1' },
        accessLevel: 'read',
      },
    ],
  },
]);

function snapshot(over: Partial<PrincipalSnapshot> = {}): PrincipalSnapshot {
  return {
    userId: 'u1',
    orgId: 'o1',
    roleId: 'r1',
    ancestorRoleIds: ['r0'],
    groupIds: ['g1'],
    policyVersion: 3,
    permissionSets: [
      {
        name: 'sales',
        objects: { account: { allowRead: true, allowEdit: true, allowCreate: true } },
        fields: { account: { '*': 'edit', phone: 'read' } },
      },
    ],
    ...over,
  };
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof PolicyError) return error.code;
    throw error;
  }
  return 'no error';
}

describe('Decision fields and writes (R5)', () => {
  const d = compileDecision(snapshot(), catalog);

  it('lists readable and editable fields; sensitive fields never appear', () => {
    expect(d.readableFields('account')).toEqual(expect.arrayContaining(['id', 'owner_id', 'name', 'phone', 'amount']));
    expect(d.readableFields('account')).not.toContain('ssn');
    expect(d.editableFields('account')).toEqual(['name', 'amount']);
    expect(d.editableFields('account', 'create')).toEqual(['name', 'amount']);
  });

  it('names the offending field and refuses the whole write', () => {
    expect(codeOf(() => d.assertWritable('edit', 'account', { name: 'ok', phone: '1' }))).toBe('field_not_editable');
    try {
      d.assertWritable('edit', 'account', { name: 'ok', phone: '1' });
    } catch (error) {
      expect((error as PolicyError).details).toEqual({ object: 'account', field: 'phone' });
      expect((error as PolicyError).status).toBe(403);
    }
    expect(codeOf(() => d.assertWritable('edit', 'account', { ssn: '1' }))).toBe('field_not_editable');
    expect(codeOf(() => d.assertWritable('edit', 'account', { owner_id: 'u2' }))).toBe('system_field_not_writable');
    expect(codeOf(() => d.assertWritable('edit', 'account', { name: 'x', amount: 2 }))).toBe('no error');
    expect(codeOf(() => d.assertReadable('account', ['name', 'ssn']))).toBe('field_not_readable');
  });

  it('edit without read answers like a missing object (404), edit without edit is 403', () => {
    const writer = compileDecision(
      snapshot({ permissionSets: [{ name: 'w', objects: { account: { allowEdit: true, allowDelete: true } } }] }),
      catalog,
    );
    expect(writer.can('edit', 'account')).toBe(false);
    expect(writer.can('delete', 'account')).toBe(false);
    expect(writer.rowFilter('delete', 'account')).toEqual({ plan: NEVER, params: [] });
    expect(codeOf(() => writer.assertWritable('edit', 'account', { name: 'x' }))).toBe('object_not_found');
    const reader = compileDecision(snapshot({ permissionSets: [{ name: 'r', objects: { account: { allowRead: true } } }] }), catalog);
    expect(codeOf(() => reader.assertWritable('edit', 'account', { name: 'x' }))).toBe('action_not_allowed');
  });

  it('projects rows to readable fields only (O2)', () => {
    expect(d.projectReadable('account', { id: 'a', org_id: 'o1', name: 'n', ssn: 'secret' })).toEqual({ id: 'a', org_id: 'o1', name: 'n' });
  });

  it('an agent without data:write has no editable fields, and loses system capabilities (R7)', () => {
    const agent = compileDecision(
      snapshot({
        agent: { clientId: 'c', name: 'bot', scopes: ['data:read'] },
        permissionSets: [...snapshot().permissionSets, { name: 'admin', systemCapabilities: ['manage_users', 'view_all_data'] }],
      }),
      catalog,
    );
    expect(agent.editableFields('account')).toEqual([]);
    expect(agent.can('edit', 'account')).toBe(false);
    expect(agent.hasCapability('manage_users')).toBe(false);
    expect(agent.hasCapability('view_all_data')).toBe(true);
  });
});

describe('row filter SQL', () => {
  it('is parameterized, uses EXISTS for shares and hierarchy, and honours configured identifiers', () => {
    const d = compileDecision(snapshot(), catalog, {
      sqlSchema: createSqlSchema({
        schema: 'objects',
        recordsSchema: 'data',
        recordTableName: (o) => `rec_${o}`,
        recordSharesTable: 'shares',
      }),
    });
    const f = d.rowFilter('read', 'account', { alias: 'a', paramOffset: 2 });
    expect(sqlOfPlan(f.plan)).toContain('"a"."org_id" = $3');
    expect(sqlOfPlan(f.plan)).toContain('"a"."id" IN (SELECT s0.record_id FROM "objects"."shares" s0 WHERE s0.org_id = $3');
    expect(sqlOfPlan(f.plan)).toContain('"a"."owner_id" IN (SELECT ur0.user_id FROM "objects"."user_roles" ur0');
    expect(sqlOfPlan(f.plan)).not.toContain('rec_account'); // never re-joins the record table: no lost or duplicated rows
    expect(sqlOfPlan(f.plan).match(/\bJOIN\b/g)).toHaveLength(1); // only role closure ⋈ user_roles, inside EXISTS
    expect(sqlOfPlan(f.plan)).not.toMatch(/'u1'|'o1'/);
    expect(f.params).toEqual(expect.arrayContaining(['o1', 'u1', 'r1', 100]));
  });

  it('can be written as correlated EXISTS instead', () => {
    const d = compileDecision(snapshot(), catalog, { sqlSchema: createSqlSchema({ semiJoin: 'exists' }) });
    const f = d.rowFilter('read', 'account');
    expect(sqlOfPlan(f.plan)).toContain(
      'EXISTS (SELECT 1 FROM "record_shares" s0 WHERE s0.org_id = "t"."org_id" AND s0.record_id = "t"."id"',
    );
    expect(sqlOfPlan(f.plan)).not.toContain(' IN (SELECT');
  });

  it('binds no parameter that the text does not use (always-true criteria rules fold away)', () => {
    const always = compileCatalog([
      {
        name: 'note',
        sharingModel: 'private',
        fields: [{ name: 'tag', type: 'string' }],
        sharingRules: [
          {
            name: 'all',
            type: 'criteria',
            criteria: { $not: { tag: { $in: [] } } },
            sharedWith: { type: 'user', id: 'u1' },
            accessLevel: 'read',
          },
        ],
      },
    ]);
    const d = compileDecision(
      snapshot({ permissionSets: [{ name: 'x', objects: { note: { allowRead: true, allowEdit: true } } }] }),
      always,
    );
    for (const action of ['read', 'edit', 'delete', 'share'] as const) {
      const f = d.rowFilter(action, 'note');
      f.params.forEach((_, i) => expect(sqlOfPlan(f.plan)).toContain(`$${i + 1}`));
    }
    expect(d.rowFilter('read', 'note')).toEqual({ plan: conditional('("t"."org_id" = $1)'), params: ['o1'] });
  });

  it('negated leaves are NULL-safe (IS NOT TRUE), positive leaves stay index friendly', () => {
    const d = compileDecision(snapshot(), catalog);
    expect(d.whereSql('account', { amount: { $ne: 5 }, name: 'x' }).text).toBe('(("t"."amount" = $1) IS NOT TRUE AND ("t"."name" = $2))');
  });

  it('list filters are typed plans: never without the permission, the row filter alone under a where that matches everything', () => {
    const d = compileDecision(snapshot(), catalog);
    const row = d.rowFilter('read', 'account');
    expect(row.plan.kind).toBe('conditional');
    expect(d.listFilter('read', 'account', {})).toEqual(row);
    expect(d.listFilter('read', 'account', { name: { $nin: [] } })).toEqual(row);
    // A where that matches nothing is still ANDed as FALSE: the SQL text is what it always was.
    expect(d.listFilter('read', 'account', { name: { $in: [] } })).toEqual({
      plan: conditional(`${sqlOfPlan(row.plan)} AND FALSE`),
      params: row.params,
    });
    const reader = compileDecision(snapshot({ permissionSets: [{ name: 'r', objects: { account: { allowRead: true } } }] }), catalog);
    expect(reader.listFilter('delete', 'account', {})).toEqual({ plan: NEVER, params: [] });
  });

  it('is FALSE without the object permission, and the tenant wall alone under modifyAll', () => {
    expect(compileDecision(snapshot({ permissionSets: [] }), catalog).rowFilter('read', 'account')).toEqual({ plan: NEVER, params: [] });
    const all = compileDecision(snapshot({ permissionSets: [{ name: 'x', objects: { account: { modifyAllRecords: true } } }] }), catalog);
    expect(all.rowFilter('delete', 'account')).toEqual({ plan: conditional('("t"."org_id" = $1)'), params: ['o1'] });
  });
});

describe('Mongo null/missing semantics of the in-memory evaluator', () => {
  const types = catalog.get('account')!.fieldTypes;
  const rows = { set: { amount: 5 }, nul: { amount: null }, missing: {} };
  it.each([
    [{ amount: { $ne: 5 } }, ['nul', 'missing']],
    [{ amount: { $nin: [5] } }, ['nul', 'missing']],
    [{ amount: null }, ['nul', 'missing']],
    [{ amount: { $in: [5, null] } }, ['set', 'nul', 'missing']],
    [{ amount: { $in: [5] } }, ['set']],
    [{ amount: { $gt: 1 } }, ['set']],
    [{ amount: { $not: { $gt: 1 } } }, ['nul', 'missing']],
    [{ amount: { $lte: 1 } }, []],
    [{ amount: { $in: [] } }, []],
    [{ amount: { $exists: true } }, ['set']],
  ])('%j matches %j', (where, expected) => {
    const node = parseWhere(where, { typeOf: (f) => types.get(f) });
    expect(
      Object.entries(rows)
        .filter(([, r]) => evaluateWhere(node, r))
        .map(([k]) => k),
    ).toEqual(expected);
  });
});

describe('DecisionCache (R10)', () => {
  it('reuses a decision for the same principal and version, rebuilds on a new version', () => {
    const cache = new DecisionCache();
    const a = cache.get(snapshot(), catalog);
    expect(cache.get(snapshot(), catalog)).toBe(a);
    const b = cache.get(snapshot({ policyVersion: 4 }), catalog);
    expect(b).not.toBe(a);
    expect(cache.stats).toMatchObject({ hits: 1, misses: 2 });
    expect(cache.stats.buildMicrosLast).toBeGreaterThan(0);
  });

  it('refuses a snapshot older than a version it has been told about', () => {
    const cache = new DecisionCache();
    cache.noteVersion('o1', 7);
    expect(codeOf(() => cache.get(snapshot({ policyVersion: 6 }), catalog))).toBe('stale_policy');
    expect(codeOf(() => cache.get(snapshot({ policyVersion: 7 }), catalog))).toBe('no error');
  });

  it('keeps agent delegations apart from the user', () => {
    const cache = new DecisionCache();
    const user = cache.get(snapshot(), catalog);
    const agent = cache.get(snapshot({ agent: { clientId: 'c', name: 'bot', scopes: ['data:read'] } }), catalog);
    expect(agent).not.toBe(user);
    expect(agent.can('edit', 'account')).toBe(false);
    expect(user.can('edit', 'account')).toBe(true);
  });
});

describe('explain (R9)', () => {
  it('lists the layers in order and names the rule that decided', () => {
    const d = compileDecision(snapshot(), catalog);
    const facts = new InMemoryAccessFacts({});
    const e = d.explain({ action: 'read', object: 'account', record: { id: 'a1', org_id: 'o1', owner_id: 'u9', amount: 150 }, facts });
    expect(e).toMatchObject({ allowed: true, decidedBy: 'sharing_rule', source: 'big deals', level: 'read', required: 'read' });
    expect(e.steps.map((s) => s.layer)).toEqual(['tenant', 'object_permission', 'sharing_rule']);
    const denied = d.explain({ action: 'edit', object: 'account', record: { id: 'a1', org_id: 'o1', owner_id: 'u9', amount: 150 }, facts });
    expect(denied).toMatchObject({ allowed: false, decidedBy: 'record_access', level: 'read', required: 'edit' });
  });
});
