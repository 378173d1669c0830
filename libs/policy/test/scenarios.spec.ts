import { loadWorlds } from './support/scenario-world';

// Runs every table in test/scenarios/*.yaml: the decision, and the layer (and source) that decided.
const worlds = loadWorlds();

describe.each(worlds.map((w) => [w.file, w] as const))('scenario table %s', (_file, world) => {
  it.each(world.spec.scenarios.map((s) => [`${s.rule}: ${s.name}`, s] as const))('%s', (_name, s) => {
    const decision = world.decisions.get(s.as);
    if (!decision) throw new Error(`unknown principal ${s.as}`);
    const record = s.record ? world.record(s.object, s.record) : undefined;
    const explanation = decision.explain({ action: s.action, object: s.object, record, facts: world.facts, field: s.field });

    // The check itself (not only explain) must give the expected answer.
    let allowed: boolean;
    if (s.field !== undefined) {
      const fieldOk =
        s.action === 'read'
          ? decision.readableFields(s.object).includes(s.field)
          : decision.editableFields(s.object, s.action === 'create' ? 'create' : 'edit').includes(s.field);
      allowed = fieldOk && (record ? decision.canRecord(s.action, s.object, record, world.facts) : decision.can(s.action, s.object));
    } else if (record) {
      allowed = decision.canRecord(s.action, s.object, record, world.facts);
    } else {
      allowed = decision.can(s.action, s.object);
    }
    expect({ allowed, explained: explanation.allowed, decidedBy: explanation.decidedBy }).toEqual({
      allowed: s.expect === 'allow',
      explained: s.expect === 'allow',
      decidedBy: s.decidedBy,
    });
    if (s.source !== undefined) expect(explanation.source).toBe(s.source);
  });
});

describe('scenario coverage', () => {
  const all = worlds.flatMap((w) => w.spec.scenarios.map((s) => ({ ...s, world: w })));
  it.each(['R1', 'R2', 'R3', 'R4a', 'R4b', 'R4c', 'R4d', 'R4e', 'R5', 'R6', 'R7'])('has at least one scenario for %s', (rule) => {
    expect(all.filter((s) => s.rule === rule).length).toBeGreaterThan(0);
  });
  it.each(['private', 'public_read', 'public_read_write', 'controlled_by_parent'])(
    'has an allow and a deny scenario on a %s object',
    (model) => {
      const onModel = all.filter(
        (s) =>
          (s.world.spec.objects as { name: string; sharingModel: string }[]).some((o) => o.name === s.object && o.sharingModel === model) &&
          s.record,
      );
      expect(onModel.some((s) => s.expect === 'allow')).toBe(true);
      expect(onModel.some((s) => s.expect === 'deny')).toBe(true);
    },
  );
});
