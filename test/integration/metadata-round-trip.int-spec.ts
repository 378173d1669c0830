import { apiClient, type Json } from '../support/api';
import { login, startTestHost, type TestHost } from '../support/host';

/**
 * `GET meta/objects/:name` → `PUT` round-trips: what GET answered (with its server-managed
 * `version` and `sharingRules`) is a valid PUT body; the version is an optimistic check; a schema
 * error names the unknown property and a union's allowed values.
 */
describe('object metadata round trip', () => {
  let t: TestHost;
  let admin: string;
  const { call, ok } = apiClient(() => t.host.url);

  beforeAll(async () => {
    t = await startTestHost('metadata_round_trip');
    admin = (await login(t.host.url)).accessToken;
    await ok(call('POST', '/meta/objects', admin, { name: 'ticket', label: 'Ticket', fields: [{ name: 'title', type: 'text' }] }), 201);
  });

  afterAll(async () => {
    await t?.stop();
  });

  it('PUT accepts what GET answered, with a new field, and bumps the version', async () => {
    const read = await ok(call('GET', '/meta/objects/ticket', admin));
    expect(read.version).toEqual(expect.any(Number));
    const next = await ok(
      call('PUT', '/meta/objects/ticket', admin, { ...read, fields: [...read.fields, { name: 'severity', type: 'number' }] }),
    );
    expect(next.version).toBe(read.version + 1);
    expect(next.fields.map((f: Json) => f.name)).toEqual(['title', 'severity']);
  });

  it('a stale version is 412 and changes nothing', async () => {
    const read = await ok(call('GET', '/meta/objects/ticket', admin));
    const stale = await call('PUT', '/meta/objects/ticket', admin, { ...read, version: read.version - 1, label: 'Stale' });
    expect(stale.status).toBe(412);
    expect(stale.body.code).toBe('precondition_failed');
    expect((await ok(call('GET', '/meta/objects/ticket', admin))).label).toBe('Ticket');
  });

  it('sharing rules that differ from the stored ones are refused at /sharingRules', async () => {
    const read = await ok(call('GET', '/meta/objects/ticket', admin));
    const res = await call('PUT', '/meta/objects/ticket', admin, { ...read, sharingRules: [{ name: 'x' }] });
    expect(res.status).toBe(400);
    expect(res.body.details.issues).toEqual([expect.objectContaining({ path: '/sharingRules' })]);
  });

  it('an unknown property is named', async () => {
    const read = await ok(call('GET', '/meta/objects/ticket', admin));
    const res = await call('PUT', '/meta/objects/ticket', admin, { ...read, colour: 'red' });
    expect(res.status).toBe(400);
    expect(res.body.details.issues).toEqual([{ path: '/colour', message: 'unknown property "colour"' }]);
  });

  it("a sharing rule's owner type names the allowed values", async () => {
    const res = await call('POST', '/meta/objects/ticket/sharing-rules', admin, {
      name: 'by_team',
      type: 'owner',
      ownedBy: { type: 'team', id: '0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b' },
      sharedWith: { type: 'group', id: '0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b' },
      accessLevel: 'read',
    });
    expect(res.status).toBe(400);
    const issues = res.body.details.issues as Json[];
    expect(issues).toEqual([
      { path: '/ownedBy/type', message: expect.stringMatching(/^must be one of: group, role, role_and_subordinates$/) },
    ]);
  });
});
