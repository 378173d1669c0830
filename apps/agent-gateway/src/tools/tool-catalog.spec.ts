import type { DescribedObject, PrincipalSnapshot } from '@custodian/contracts';
import type { Bus, CustodianConfig } from '@custodian/platform';
import { INLINE_OBJECT_SCHEMAS, listedTool, visibleTools } from './tool-catalog';
import { ToolCatalogService } from './tool-catalog.service';
import { ToolInputValidator } from './tool-input.validator';

const ORG = '00000000-0000-4000-8000-000000000001';

function principal(overrides: Partial<PrincipalSnapshot> = {}): PrincipalSnapshot {
  return {
    userId: '00000000-0000-4000-8000-000000000002',
    orgId: ORG,
    email: 'rep@example.test',
    capabilities: ['mcp_access'],
    roleId: null,
    ancestorRoleIds: [],
    groupIds: [],
    policyVersion: 7,
    permissionSets: [{ name: 'Reps', objects: { deal: { allowRead: true, allowCreate: true } } }],
    ...overrides,
  } as PrincipalSnapshot;
}

function object(name: string): DescribedObject {
  return {
    name,
    label: name,
    can: { read: true, create: true, edit: true, delete: false },
    fields: [
      { name: 'title', type: 'text', required: true, editable: true },
      { name: 'stage', type: 'select', required: false, editable: true, enum: ['open', 'won'] },
    ],
  } as unknown as DescribedObject;
}

describe('tool catalog', () => {
  it('lists per-object values inline for a few objects, by reference beyond INLINE_OBJECT_SCHEMAS, and validates against the full schema either way', () => {
    const few = visibleTools(principal(), [object('deal')], { maxRows: 50 });
    const createFew = few.find((t) => t.name === 'create_record')!;
    expect(listedTool(createFew).inputSchema).toEqual(createFew.inputSchema);

    const many = Array.from({ length: INLINE_OBJECT_SCHEMAS + 1 }, (_, i) => object(`obj_${i}`));
    const create = visibleTools(principal(), many, { maxRows: 50 }).find((t) => t.name === 'create_record')!;
    const listed = listedTool(create).inputSchema as {
      allOf?: unknown;
      properties: Record<string, { enum?: string[]; description?: string }>;
    };
    expect(listed.allOf).toBeUndefined();
    expect(listed.properties.object.enum).toHaveLength(many.length);
    expect(listed.properties.values.description).toContain('describe_object');
    expect(JSON.stringify(listed).length).toBeLessThan(JSON.stringify(create.inputSchema).length / 5);

    // The call is still checked per object: a value outside the select's enum, or a missing required field, is refused.
    const validator = new ToolInputValidator();
    const base = { object: 'obj_3', justification: 'why' };
    expect(validator.validate(create.inputSchema, { ...base, values: { title: 'x', stage: 'open' } })).toEqual([]);
    expect(validator.validate(create.inputSchema, { ...base, values: { title: 'x', stage: 'lost' } })).toEqual([
      expect.objectContaining({ field: '/values/stage' }),
    ]);
    expect(validator.validate(create.inputSchema, { ...base, values: { stage: 'open' } })).toEqual([
      { field: '/values/title', message: 'is required' },
    ]);
  });

  it('keys its cache by what tools are computed from: credentials of one user share it, other grants or versions do not', () => {
    const catalog = new ToolCatalogService({} as Bus, { agentGateway: { maxRows: 50 } } as CustodianConfig);
    const viaKey = principal({ apiKeyId: '00000000-0000-4000-8000-0000000000a1' });
    const viaSession = principal({ sessionId: '00000000-0000-4000-8000-0000000000b1' });
    expect(catalog.keyOf(viaKey)).toBe(catalog.keyOf(viaSession));
    const agent = (scopes: string[], clientId = 'copilot') => principal({ agent: { clientId, name: clientId, scopes } as never });
    expect(catalog.keyOf(agent(['data:read'], 'a'))).toBe(catalog.keyOf(agent(['data:read'], 'b')));
    const others = [
      principal({ policyVersion: 8 }),
      principal({ orgId: '00000000-0000-4000-8000-000000000009' }),
      principal({ permissionSets: [{ name: 'Reps', objects: { deal: { allowRead: true } } }] as never }),
      principal({ capabilities: ['mcp_access', 'manage_metadata'] }),
      principal({ apiKeyScopes: ['mcp_access'] }),
      agent(['data:read']),
      agent(['data:read', 'data:write']),
    ];
    const keys = new Set([catalog.keyOf(viaKey), ...others.map((p) => catalog.keyOf(p))]);
    expect(keys.size).toBe(others.length + 1);
  });
});
