import type { AuditVisibility } from '@custodian/contracts';
import { AuditViewFilter, recordSubject, subjectsOf } from './audit-view-filter';

const A = '01a23545-cfd2-79d1-a740-480177547b15';
const B = '01a23545-cfd2-79d1-a740-480177547b16';

function recordEvent(action: string, details: Record<string, unknown>, target: Record<string, unknown> = { type: 'deal', id: A }) {
  return { id: 'e', service: 'objects', action, outcome: 'success', actor: {}, target, details };
}

const restricted: AuditVisibility = {
  unrestricted: false,
  objects: { deal: { allRecords: false, readableFields: ['id', 'owner_id', 'version', 'name'] } },
  readable: [{ object: 'deal', id: A }],
};

describe('AuditViewFilter', () => {
  const filter = new AuditViewFilter(restricted);

  it('replaces the value of a field below read by {hidden: true} in changes, fields, before and after', () => {
    const shown = filter.show(
      recordEvent('objects.record.updated', {
        changes: { name: { from: 'a', to: 'b' }, margin: { from: 1, to: 2 } },
        before: { margin: 1 },
        after: { margin: 2, name: 'b' },
        version: 2,
      }),
    );
    expect(shown).toEqual({
      redacted: true,
      event: expect.objectContaining({
        details: {
          changes: { name: { from: 'a', to: 'b' }, margin: { hidden: true } },
          before: { margin: { hidden: true } },
          after: { margin: { hidden: true }, name: 'b' },
          version: 2,
        },
      }),
    });
  });

  it('shows an event with nothing hidden unchanged, and not marked', () => {
    const event = recordEvent('objects.share.granted', { sharedWith: { type: 'user', id: B }, accessLevel: 'read' });
    expect(filter.show(event)).toEqual({ event, redacted: false });
  });

  it('withholds events of unreadable, deleted, or unknown records and objects, and record events without an object', () => {
    expect(filter.show(recordEvent('objects.record.updated', {}, { type: 'deal', id: B }))).toBeUndefined();
    expect(filter.show(recordEvent('objects.record.updated', {}, { type: 'invoice', id: A }))).toBeUndefined();
    expect(filter.show({ service: 'objects', action: 'objects.record.updated', details: {} })).toBeUndefined();
    expect(filter.show(recordEvent('objects.record.read', { ids: [A] }, { type: 'toString' }))).toBeUndefined();
  });

  it('a reader of every record of the object sees a deleted record’s events', () => {
    const all = new AuditViewFilter({ ...restricted, objects: { deal: { ...restricted.objects.deal, allRecords: true } } });
    expect(all.show(recordEvent('objects.record.deleted', { fields: { name: { from: 'x', to: null } } }, { type: 'deal', id: B }))).toEqual(
      {
        redacted: false,
        event: expect.anything(),
      },
    );
  });

  it('keeps only readable record ids in a list read, and drops details it does not know', () => {
    const shown = filter.show(recordEvent('objects.record.read', { ids: [A, B], fields: ['name', 'margin'], note: 'x' }, { type: 'deal' }));
    expect(shown).toEqual({ redacted: true, event: expect.objectContaining({ details: { ids: [A], fields: ['name', 'margin'] } }) });
  });

  it('leaves events that are not about records alone, and an unrestricted reader sees everything', () => {
    const login = { id: 'e', service: 'identity', action: 'auth.login', target: { type: 'session', id: A }, details: { margin: 1 } };
    expect(filter.show(login)).toEqual({ event: login, redacted: false });
    const denied = { id: 'e', service: 'objects', action: 'authz.denied', target: { type: 'deal', id: B }, details: { reason: 'x' } };
    expect(filter.show(denied)).toEqual({ event: denied, redacted: false });
    const event = recordEvent('objects.record.updated', { changes: { margin: { from: 1, to: 2 } } }, { type: 'gone', id: B });
    expect(new AuditViewFilter({ unrestricted: true, objects: {}, readable: [] }).show(event)).toEqual({ event, redacted: false });
  });

  it('names the objects and records of a batch once each', () => {
    expect(recordSubject({ service: 'identity', action: 'objects.record.updated' })).toBeUndefined();
    const events = [
      recordEvent('objects.record.updated', {}),
      recordEvent('objects.record.read', { ids: [A, B] }, { type: 'deal' }),
      recordEvent('objects.record.updated', {}, { type: 'invoice', id: B }),
    ];
    expect(subjectsOf(events)).toEqual({
      objects: ['deal', 'invoice'],
      records: [
        { object: 'deal', id: A },
        { object: 'deal', id: B },
        { object: 'invoice', id: B },
      ],
    });
  });
});
