import { diffRows, formatValue } from './diff';
import { startPolling } from './poll';
import { pendingOf } from './pending';
import { buildQuery, changedValues, isEditable, readableColumns, type ObjectMeta } from './records';

const opportunity: ObjectMeta = {
  name: 'opportunity',
  fields: [
    { name: 'name', type: 'text', required: true, access: 'edit' },
    { name: 'stage', type: 'select', options: ['proposal', 'negotiation'], access: 'edit' },
    { name: 'amount', type: 'currency', access: 'edit' },
  ],
};

describe('diffRows', () => {
  it('shows a hidden field as "changed, hidden" and never a value for it', () => {
    const rows = diffRows({ margin: { hidden: true }, amount: { from: 12000, to: 15000 } });
    expect(rows).toEqual([
      { field: 'amount', kind: 'changed', from: 12000, to: 15000 },
      { field: 'margin', kind: 'hidden' },
    ]);
    expect(JSON.stringify(rows)).not.toContain('0.25');
  });

  it('keeps other shapes (a metadata diff) whole and tolerates no diff', () => {
    expect(diffRows({ fieldsAdded: [{ name: 'x' }] })).toEqual([{ field: 'fieldsAdded', kind: 'other', value: [{ name: 'x' }] }]);
    expect(diffRows(null)).toEqual([]);
    expect(formatValue(null)).toBe('—');
    expect(formatValue({ a: 1 })).toBe('{"a":1}');
  });
});

describe('records queries', () => {
  it('asks only for the readable fields the metadata listed', () => {
    expect(readableColumns(opportunity)).toEqual(['name', 'stage', 'amount']);
    expect(buildQuery(opportunity, { limit: 25 })).toEqual({
      object: 'opportunity',
      fields: ['name', 'stage', 'amount'],
      limit: 25,
      orderBy: [{ field: 'created_at', order: 'desc' }],
    });
  });

  it('never sorts or filters on a field it was not told about (a hidden margin)', () => {
    const q = buildQuery(opportunity, { limit: 25, sort: { field: 'margin', desc: true }, filter: { field: 'margin', value: '0.3' } });
    expect(JSON.stringify(q)).not.toContain('margin');
  });

  it('filters text by prefix, numbers by value, and passes the cursor', () => {
    expect(buildQuery(opportunity, { limit: 5, filter: { field: 'name', value: ' Acme ' }, cursor: 'c1' })).toMatchObject({
      where: { name: { $startsWith: 'Acme' } },
      cursor: 'c1',
    });
    expect(
      buildQuery(opportunity, { limit: 5, filter: { field: 'amount', value: '100' }, sort: { field: 'amount', desc: true } }),
    ).toMatchObject({
      where: { amount: 100 },
      orderBy: [{ field: 'amount', order: 'desc' }],
    });
  });

  it('sends only the values the user changed', () => {
    const record = { name: 'Acme', stage: 'proposal', amount: 12000 };
    expect(changedValues(opportunity, record, { name: 'Acme', stage: 'negotiation', amount: '12000' })).toEqual({ stage: 'negotiation' });
    expect(changedValues(opportunity, record, { name: 'Acme', stage: 'proposal', amount: '' })).toEqual({ amount: null });
  });

  it('never sends a field the server marked read-only (or did not mark editable) for this caller', () => {
    const readOnly: ObjectMeta = {
      ...opportunity,
      fields: opportunity.fields.map((f) =>
        f.name === 'amount' ? { ...f, access: 'read' as const } : f.name === 'stage' ? { ...f, access: undefined } : f,
      ),
    };
    expect(isEditable(readOnly.fields[0]!)).toBe(true);
    expect(isEditable(readOnly.fields[1]!)).toBe(false);
    expect(isEditable(readOnly.fields[2]!)).toBe(false);
    const record = { name: 'Acme', stage: 'proposal', amount: 12000 };
    expect(changedValues(readOnly, record, { name: 'Acme 2', stage: 'negotiation', amount: '1' })).toEqual({ name: 'Acme 2' });
  });
});

describe('startPolling', () => {
  it('runs one tick at a time, backs off on errors up to the cap, and stops', async () => {
    const timers: Array<{ fn: () => void; ms: number }> = [];
    let fail = true;
    let ticks = 0;
    const stop = startPolling(
      async () => {
        ticks++;
        if (fail) throw new Error('down');
      },
      {
        intervalMs: 1000,
        maxIntervalMs: 3000,
        setTimer: (fn, ms) => timers.push({ fn, ms }),
        clearTimer: () => undefined,
        random: () => 0.999999, // the top of the jitter: the doubling and the cap show
      },
    );
    const fire = async (): Promise<void> => {
      timers.shift()!.fn();
      await new Promise((r) => setImmediate(r));
    };
    expect(timers.map((t) => t.ms)).toEqual([1000]);
    await fire();
    await fire();
    await fire();
    expect(timers.map((t) => t.ms)).toEqual([3000]);
    fail = false;
    await fire();
    expect(timers.map((t) => t.ms)).toEqual([1000]);
    stop();
    await fire();
    expect(timers).toEqual([]);
    expect(ticks).toBe(5);
  });

  it('jitters the wait after failures between the interval and the doubled ceiling', async () => {
    const waits = async (r: number, failures: number): Promise<number[]> => {
      const timers: Array<{ fn: () => void; ms: number }> = [];
      startPolling(() => Promise.reject(new Error('down')), {
        intervalMs: 1000,
        maxIntervalMs: 30_000,
        setTimer: (fn, ms) => timers.push({ fn, ms }),
        clearTimer: () => undefined,
        random: () => r,
      });
      const seen: number[] = [];
      for (let i = 0; i < failures; i++) {
        timers.shift()!.fn();
        await new Promise((res) => setImmediate(res));
        seen.push(timers[0]!.ms);
      }
      return seen;
    };
    expect(await waits(0, 3)).toEqual([1000, 1000, 1000]);
    expect(await waits(0.5, 3)).toEqual([1500, 2500, 4500]);
    expect(await waits(0.999999, 6)).toEqual([2000, 4000, 8000, 16000, 30000, 30000]);
  });
});

describe('pendingOf', () => {
  it('finds the pending action of a 202 (either shape) and nothing in a 200 or 201', () => {
    expect(pendingOf(202, { pendingAction: { id: 'a1', state: 'pending', kind: 'permission.change' } })).toEqual({
      id: 'a1',
      state: 'pending',
      kind: 'permission.change',
    });
    expect(pendingOf(202, { id: 'a2', state: 'pending', kind: 'record.update' })).toEqual({
      id: 'a2',
      state: 'pending',
      kind: 'record.update',
    });
    expect(pendingOf(200, { pendingAction: { id: 'a3' } })).toBeUndefined();
    expect(pendingOf(201, { id: 'a4', state: 'pending' })).toBeUndefined();
    expect(pendingOf(202, undefined)).toBeUndefined();
  });
});
