import { apiClient, type Json } from '../support/api';
import { createMember, login, startTestHost, type TestHost } from '../support/host';

const PASSWORD = 'a-long-enough-password';

/**
 * R6 over REST: an object that belongs to an app exists only for holders of that app — and for
 * holders of view_all_data / modify_all_data, which grant every app. Metadata and data agree: an
 * object a caller sees in `GET meta/objects` can be queried, and one it cannot query is not listed.
 * modify_all_data also creates in every object (ADR 0005 §6). Before this, the bootstrap
 * administrator saw `account` in the metadata and got `object_not_found` on a query.
 */
describe('view_all_data / modify_all_data grant every app (R6)', () => {
  let t: TestHost;
  const { call, ok } = apiClient(() => t.host.url);
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    t = await startTestHost('capabilities_open_apps');
    tokens.admin = (await login(t.host.url)).accessToken;
    await ok(
      call('POST', '/meta/objects', tokens.admin, {
        name: 'ledger',
        label: 'Ledger',
        app: 'finance',
        sharingModel: 'private',
        fields: [{ name: 'title', type: 'text' }],
      }),
      201,
    );
    const set = async (body: Json): Promise<string> => (await ok(call('POST', '/permission-sets', tokens.admin, body), 201)).id;
    const noApp = await set({ name: 'Ledger readers without the app', objects: { ledger: { allowRead: true, allowCreate: true } } });
    const viewAll = await set({ name: 'Auditors', systemCapabilities: ['view_all_data'] });
    const modifyAll = await set({ name: 'Data admins', systemCapabilities: ['modify_all_data'] });
    tokens.noApp = (await createMember(t.host.url, tokens.admin, 'noapp', [noApp], PASSWORD)).accessToken;
    tokens.viewAll = (await createMember(t.host.url, tokens.admin, 'viewall', [viewAll], PASSWORD)).accessToken;
    tokens.modifyAll = (await createMember(t.host.url, tokens.admin, 'modifyall', [modifyAll], PASSWORD)).accessToken;
  });

  afterAll(async () => {
    await t?.stop();
  });

  const listed = async (token: string): Promise<string[]> =>
    ((await ok(call('GET', '/meta/objects', token))).items as Json[]).map((o) => o.name as string);

  it('the bootstrap administrator creates and queries a record of an app no set of hers names', async () => {
    expect(await listed(tokens.admin)).toContain('ledger');
    const created = await ok(call('POST', '/data/ledger', tokens.admin, { title: 'Q4 close' }), 201);
    const page = await ok(call('POST', '/query', tokens.admin, { object: 'ledger' }));
    expect(page.items.map((r: Json) => r.id)).toContain(created.id);
  });

  it('modify_all_data alone creates in the app object and reads it back', async () => {
    expect(await listed(tokens.modifyAll)).toContain('ledger');
    const created = await ok(call('POST', '/data/ledger', tokens.modifyAll, { title: 'Accrual' }), 201);
    await ok(call('GET', `/data/ledger/${created.id}`, tokens.modifyAll));
  });

  it('view_all_data alone reads every record of the app object but does not create', async () => {
    expect(await listed(tokens.viewAll)).toContain('ledger');
    const page = await ok(call('POST', '/query', tokens.viewAll, { object: 'ledger' }));
    expect(page.items.length).toBeGreaterThanOrEqual(2);
    const refused = await call('POST', '/data/ledger', tokens.viewAll, { title: 'nope' });
    expect(refused.status).toBe(403);
  });

  it('creates on behalf of another member in one call, only with the transfer right', async () => {
    const { userId: owner } = await createMember(t.host.url, tokens.admin, 'owner', [], PASSWORD);
    const made = await ok(call('POST', '/data/ledger', tokens.modifyAll, { title: 'For the owner', owner_id: owner }), 201);
    expect(made.owner_id).toBe(owner);
    // A caller who may create but not transfer owns what it creates, and cannot hand it to someone else.
    const creator = await ok(
      call('POST', '/permission-sets', tokens.admin, {
        name: 'Creators',
        apps: ['finance'],
        objects: { ledger: { allowRead: true, allowCreate: true } },
      }),
      201,
    );
    const { accessToken } = await createMember(t.host.url, tokens.admin, 'creator', [creator.id], PASSWORD);
    const refused = await call('POST', '/data/ledger', accessToken, { title: 'Not mine to give', owner_id: owner });
    expect(refused.status).toBe(403);
    expect((await call('POST', '/data/ledger', accessToken, { title: 'Mine' })).status).toBe(201);
    // An owner who is not a member of this org: 400 at /owner_id, nothing written.
    const stranger = await call('POST', '/data/ledger', tokens.modifyAll, { title: 'x', owner_id: '0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b' });
    expect(stranger.status).toBe(400);
    expect(stranger.body.details.issues[0].path).toBe('/owner_id');
    const bad = await call('POST', '/data/ledger', tokens.modifyAll, { title: 'x', owner_id: 7 });
    expect(bad.status).toBe(400);
  });

  it('an object permission without the app: the object exists neither in metadata nor in data', async () => {
    expect(await listed(tokens.noApp)).not.toContain('ledger');
    const query = await call('POST', '/query', tokens.noApp, { object: 'ledger' });
    expect(query.status).toBe(404);
    expect(query.body.code).toBe('object_not_found');
    const create = await call('POST', '/data/ledger', tokens.noApp, { title: 'nope' });
    expect(create.status).toBe(404);
  });
});
