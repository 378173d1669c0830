import { Client } from 'pg';
import { apiClient, type Json } from '../support/api';
import { login, startTestHost, type TestHost } from '../support/host';

const PASSWORD = 'a-long-enough-password';

/**
 * The objects service over REST on real PostgreSQL, driven as an admin and three users of one
 * role tree (vp_sales > rep_west, rep_east) and the admin of a second org: metadata with real
 * tables, the directory replica, governed CRUD with field security, O1–O10, F1.
 */
describe('objects: metadata, directory replica, governed records', () => {
  let t: TestHost;
  let base: string;
  let pg: Client;
  let admin: string;
  let orgId: string;
  const users: Record<string, { id: string; token: string }> = {};
  let otherAdmin: string;
  let salesSetId: string;

  const { call, ok } = apiClient(() => base);
  const q = (params: Record<string, unknown>): string =>
    '?' +
    Object.entries(params)
      .map(([k, v]) => `${k}=${encodeURIComponent(typeof v === 'string' ? v : JSON.stringify(v))}`)
      .join('&');
  const countRows = async (): Promise<number> => {
    const r = await pg.query(`SELECT count(*)::int AS n FROM objects."r_${orgId.replace(/-/g, '')}_account"`);
    return r.rows[0].n;
  };
  const auditRows = async (action: string, targetId: string): Promise<Json[]> =>
    (await pg.query("SELECT * FROM objects.outbox WHERE payload->>'action' = $1 AND payload->'target'->>'id' = $2", [action, targetId]))
      .rows;

  const ACCOUNT = {
    name: 'account',
    label: 'Account',
    sharingModel: 'private',
    fields: [
      { name: 'name', type: 'text', required: true, maxLength: 120 },
      { name: 'region', type: 'select', options: ['west', 'east'] },
      { name: 'revenue', type: 'currency' },
      { name: 'ssn', type: 'text', sensitive: true },
      { name: 'website', type: 'url' },
      { name: 'tags', type: 'multiselect', options: ['hot', 'cold', 'new'] },
      { name: 'active', type: 'boolean', default: true },
      { name: 'signed_on', type: 'date' },
      { name: 'code', type: 'text', unique: true },
    ],
  };

  beforeAll(async () => {
    t = await startTestHost('objrec');
    base = t.host.url;
    pg = new Client({ connectionString: t.db.url });
    await pg.connect();
    const session = await login(base);
    admin = session.accessToken;
    orgId = session.orgId;

    const vp = await ok(call('POST', '/roles', admin, { name: 'vp_sales' }), 201);
    const west = await ok(call('POST', '/roles', admin, { name: 'rep_west', parentId: vp.id }), 201);
    const east = await ok(call('POST', '/roles', admin, { name: 'rep_east', parentId: vp.id }), 201);
    const roleOf: Record<string, string> = { victor: vp.id, wendy: west.id, eric: east.id };
    const sales = await ok(
      call('POST', '/permission-sets', admin, {
        name: 'Sales',
        objects: { account: { allowRead: true, allowCreate: true, allowEdit: true, allowDelete: true } },
      }),
      201,
    );
    salesSetId = sales.id;
    const ssnReader = await ok(
      call('POST', '/permission-sets', admin, {
        name: 'SSN',
        objects: { account: { allowRead: true } },
        fields: { account: { ssn: 'read' } },
      }),
      201,
    );
    for (const name of ['victor', 'wendy', 'eric']) {
      const u = await ok(
        call('POST', '/users', admin, { email: `${name}@test.local`, displayName: name, password: PASSWORD, roleId: roleOf[name] }),
        201,
      );
      await ok(call('POST', `/permission-sets/${sales.id}/assignments`, admin, { userId: u.id }), 201);
      if (name === 'victor') await ok(call('POST', `/permission-sets/${ssnReader.id}/assignments`, admin, { userId: u.id }), 201);
      users[name] = { id: u.id, token: '' };
    }
    for (const name of Object.keys(users))
      users[name].token = (await login(base, { email: `${name}@test.local`, password: PASSWORD })).accessToken;
    const org2 = await ok(call('POST', '/orgs', admin, { name: 'Globex' }), 201);
    otherAdmin = (await login(base, { email: 'admin@test.local', password: 'correct-horse-battery-staple', orgId: org2.id } as never))
      .accessToken;
  }, 60_000);

  afterAll(async () => {
    await pg?.end();
    await t?.stop();
  });

  describe('metadata', () => {
    it('creates a real table with columns and indexes, audited; only manage_metadata may write', async () => {
      expect((await call('POST', '/meta/objects', users.wendy.token, ACCOUNT)).status).toBe(403);
      const created = await ok(call('POST', '/meta/objects', admin, ACCOUNT), 201);
      expect(created).toMatchObject({ name: 'account', version: 1, sharingModel: 'private', grantAccessUsingHierarchy: true });
      const cols = await pg.query(
        `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'objects' AND table_name = $1 ORDER BY ordinal_position`,
        [`r_${orgId.replace(/-/g, '')}_account`],
      );
      expect(cols.rows.map((r) => r.column_name)).toEqual(
        expect.arrayContaining([
          'id',
          'org_id',
          'owner_id',
          'created_at',
          'created_by',
          'updated_at',
          'updated_by',
          'version',
          'name',
          'ssn',
          'revenue',
        ]),
      );
      expect((await auditRows('objects.metadata.changed', 'account')).length).toBe(1);
      expect((await call('POST', '/meta/objects', admin, ACCOUNT)).status).toBe(409);
    });

    it('refuses bad names, system field names, unbounded counts and unknown references (400)', async () => {
      for (const bad of [
        { ...ACCOUNT, name: 'Robert"); DROP TABLE x;--' },
        { ...ACCOUNT, name: 'acc2', fields: [{ name: 'owner_id', type: 'text' }] },
        { ...ACCOUNT, name: 'acc2', fields: [{ name: 'x', type: 'lookup', reference: 'nope' }] },
        { ...ACCOUNT, name: 'acc2', fields: Array.from({ length: 201 }, (_, i) => ({ name: `f${i}`, type: 'text' })) },
        { ...ACCOUNT, name: 'acc2', fields: [{ name: 'a', type: 'select' }] },
        { ...ACCOUNT, name: 'acc2', fields: [{ name: 'a', type: 'number', default: 'x' }] },
      ]) {
        const res = await call('POST', '/meta/objects', admin, bad);
        expect([res.status, res.body.code]).toEqual([400, 'validation_failed']);
      }
    });

    it('takes the longest names (index names stay distinct under the 63-byte limit)', async () => {
      const name = 'a'.repeat(28);
      const long = {
        name,
        label: 'Long',
        fields: [
          { name: 'f'.repeat(63), type: 'text', unique: true },
          { name: 'g', type: 'text', unique: true },
        ],
      };
      await ok(call('POST', '/meta/objects', admin, long), 201);
      await ok(call('PUT', `/meta/objects/${name}`, admin, { ...long, fields: [long.fields[0]] }));
      expect((await call('DELETE', `/meta/objects/${name}`, admin)).status).toBe(204);
    });

    it('adds and removes fields with PUT; members describe only readable fields', async () => {
      await ok(call('PUT', '/meta/objects/account', admin, { ...ACCOUNT, fields: [...ACCOUNT.fields, { name: 'temp', type: 'number' }] }));
      const v = await ok(call('PUT', '/meta/objects/account', admin, ACCOUNT));
      expect(v.version).toBe(3);
      const described = await ok(call('GET', '/meta/objects/account', users.wendy.token));
      expect(described.fields.map((f: Json) => f.name)).not.toContain('ssn');
      const victor = await ok(call('GET', '/meta/objects/account', users.victor.token));
      expect(victor.fields.map((f: Json) => f.name)).toContain('ssn');
    });

    it('R5: each described field says whether this caller may edit it (access edit | read), in the list too; view=caller for managers', async () => {
      const access = (view: Json): Record<string, string> => Object.fromEntries(view.fields.map((f: Json) => [f.name, f.access]));
      // victor: Sales (edit on account) + SSN (ssn named read-only)
      const victor = await ok(call('GET', '/meta/objects/account', users.victor.token));
      expect(access(victor)).toMatchObject({ name: 'edit', region: 'edit', ssn: 'read' });
      const listed = (await ok(call('GET', '/meta/objects', users.victor.token))).items.find((o: Json) => o.name === 'account');
      expect(access(listed)).toEqual(access(victor));
      // a reader without edit on the object: every field is read-only for her
      const reader = await ok(
        call('POST', '/permission-sets', admin, { name: 'Account readers', objects: { account: { allowRead: true } } }),
        201,
      );
      const rita = await ok(call('POST', '/users', admin, { email: 'rita@test.local', displayName: 'rita', password: PASSWORD }), 201);
      await ok(call('POST', `/permission-sets/${reader.id}/assignments`, admin, { userId: rita.id }), 201);
      const ritaToken = (await login(base, { email: 'rita@test.local', password: PASSWORD })).accessToken;
      const ritaView = access(await ok(call('GET', '/meta/objects/account', ritaToken)));
      expect(Object.keys(ritaView).length).toBeGreaterThan(0);
      expect(new Set(Object.values(ritaView))).toEqual(new Set(['read']));
      // a metadata manager gets the definition in full (what PUT takes back), or with view=caller her own view
      const full = await ok(call('GET', '/meta/objects/account', admin));
      expect(full.fields).toHaveLength(ACCOUNT.fields.length);
      expect(full.fields.some((f: Json) => 'access' in f)).toBe(false);
      const own = await ok(call('GET', '/meta/objects/account?view=caller', admin));
      for (const f of own.fields) expect(['read', 'edit']).toContain(f.access);
      const ownList = (await ok(call('GET', '/meta/objects?view=caller', admin))).items.find((o: Json) => o.name === 'account');
      expect(access(ownList)).toEqual(access(own));
      expect((await call('GET', '/meta/objects/account?view=everything', admin)).status).toBe(400);
    });
  });

  describe('directory replica', () => {
    it('holds user→role, the role closure and the applied policy version', async () => {
      const closure = await pg.query('SELECT count(*)::int AS n FROM objects.role_closure WHERE org_id = $1', [orgId]);
      expect(closure.rows[0].n).toBe(5); // 3 self rows + vp→west + vp→east
      const roles = await pg.query('SELECT user_id FROM objects.user_roles WHERE org_id = $1', [orgId]);
      expect(roles.rows.map((r) => r.user_id)).toEqual(expect.arrayContaining([users.wendy.id, users.eric.id, users.victor.id]));
      const state = await pg.query('SELECT applied_seq, directory_version FROM objects.directory_replica_state WHERE org_id = $1', [orgId]);
      expect(Number(state.rows[0].applied_seq)).toBeGreaterThan(0);
    });
  });

  describe('records', () => {
    let wendyAcc: Json;

    it('creates with system fields set by the server; answers readable fields only', async () => {
      wendyAcc = await ok(
        call('POST', '/data/account', users.wendy.token, { name: 'Acme', region: 'west', revenue: 10.5, tags: ['hot', 'new'], code: 'A1' }),
        201,
      );
      expect(wendyAcc).toMatchObject({
        name: 'Acme',
        region: 'west',
        revenue: 10.5,
        tags: ['hot', 'new'],
        active: true,
        version: 1,
        owner_id: users.wendy.id,
        org_id: orgId,
      });
      expect(wendyAcc).not.toHaveProperty('ssn');
      expect((await auditRows('objects.record.created', wendyAcc.id)).length).toBe(1);
    });

    it('O3: system and unknown fields → 400, nothing written; R5: fields below edit → 403', async () => {
      const before = await countRows();
      for (const extra of [
        { id: '00000000-0000-4000-8000-000000000000' },
        { org_id: orgId },
        { owner_id: 'eric' },
        { version: 9 },
        { created_by: users.eric.id },
        { nope: 1 },
      ]) {
        const res = await call('POST', '/data/account', users.wendy.token, { name: 'Mass', ...extra });
        expect(res.status).toBe(400);
      }
      // owner_id at create means "on behalf of": it needs the transfer right, which wendy lacks.
      const onBehalf = await call('POST', '/data/account', users.wendy.token, { name: 'Mass', owner_id: users.eric.id });
      expect([onBehalf.status, onBehalf.body.code]).toEqual([403, 'action_not_allowed']);
      const ssn = await call('POST', '/data/account', users.wendy.token, { name: 'X', ssn: '123' });
      expect([ssn.status, ssn.body.code]).toEqual([403, 'field_not_editable']);
      const typeErr = await call('POST', '/data/account', users.wendy.token, { name: 'X', revenue: 'lots' });
      expect(typeErr.status).toBe(400);
      const missing = await call('POST', '/data/account', users.wendy.token, { region: 'west' });
      expect(missing.status).toBe(400);
      expect(await countRows()).toBe(before);
    });

    it('R4: owner and hierarchy see the record; a peer does not (404 on read, patch, delete)', async () => {
      expect((await ok(call('GET', `/data/account/${wendyAcc.id}`, users.wendy.token))).name).toBe('Acme');
      const asVictor = await ok(call('GET', `/data/account/${wendyAcc.id}`, users.victor.token));
      expect(asVictor).toHaveProperty('ssn', null); // victor's second set names the sensitive field
      expect((await call('GET', `/data/account/${wendyAcc.id}`, users.eric.token)).status).toBe(404);
      expect((await call('PATCH', `/data/account/${wendyAcc.id}`, users.eric.token, { name: 'x' }, { 'if-match': '"1"' })).status).toBe(
        404,
      );
      expect((await call('DELETE', `/data/account/${wendyAcc.id}`, users.eric.token)).status).toBe(404);
      const list = await ok(call('GET', '/data/account', users.eric.token));
      expect(list.items).toEqual([]);
    });

    it('PATCH needs If-Match; mismatch → 412; success bumps the version and audits the field diff', async () => {
      expect((await call('PATCH', `/data/account/${wendyAcc.id}`, users.wendy.token, { name: 'Acme 2' })).status).toBe(412);
      expect(
        (await call('PATCH', `/data/account/${wendyAcc.id}`, users.wendy.token, { name: 'Acme 2' }, { 'if-match': '"7"' })).status,
      ).toBe(412);
      const res = await call(
        'PATCH',
        `/data/account/${wendyAcc.id}`,
        users.wendy.token,
        { name: 'Acme 2', revenue: 11 },
        { 'if-match': '"1"' },
      );
      expect(res.status).toBe(200);
      expect(res.headers.get('etag')).toBe('"2"');
      expect(res.body).toMatchObject({ name: 'Acme 2', version: 2 });
      const [audit] = await auditRows('objects.record.updated', wendyAcc.id);
      expect(audit.payload.details.changes).toEqual({ name: { from: 'Acme', to: 'Acme 2' }, revenue: { from: 10.5, to: 11 } });
      const ssn = await call('PATCH', `/data/account/${wendyAcc.id}`, users.victor.token, { ssn: '1' }, { 'if-match': '"2"' });
      expect([ssn.status, ssn.body.code]).toEqual([403, 'field_not_editable']);
      const dup = await call('POST', '/data/account', users.eric.token, { name: 'Dup', code: 'A1' });
      expect(dup.status).toBe(409);
    });

    it('O1: another org answers 404 for the same ids, even with the same object name', async () => {
      await ok(call('POST', '/meta/objects', otherAdmin, ACCOUNT), 201);
      expect((await call('GET', `/data/account/${wendyAcc.id}`, otherAdmin)).status).toBe(404);
      expect((await call('PATCH', `/data/account/${wendyAcc.id}`, otherAdmin, { name: 'x' }, { 'if-match': '"2"' })).status).toBe(404);
      expect((await call('DELETE', `/data/account/${wendyAcc.id}`, otherAdmin)).status).toBe(404);
      expect((await ok(call('GET', '/data/account', otherAdmin))).items).toEqual([]);
      expect((await call('GET', `/data/account/not-a-uuid`, users.wendy.token)).status).toBe(404);
      // A6: each refusal is audited with the object and record it was about
      const denied = await pg.query(
        `SELECT payload FROM objects.outbox WHERE payload->>'action' = 'authz.denied' AND payload->'target'->>'id' = $1`,
        [wendyAcc.id],
      );
      expect(denied.rows.length).toBeGreaterThanOrEqual(3);
      expect(denied.rows.every((r) => r.payload.outcome === 'denied' && r.payload.target.type === 'account')).toBe(true);
    });

    it('F6: a write storm on one record — exactly one PATCH per version wins, one audit row each; parallel creates all land', async () => {
      const acc = await ok(call('POST', '/data/account', users.wendy.token, { name: 'Storm', revenue: 0 }), 201);
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          call('PATCH', `/data/account/${acc.id}`, users.wendy.token, { revenue: i + 1 }, { 'if-match': '"1"' }),
        ),
      );
      expect(results.filter((r) => r.status === 200)).toHaveLength(1);
      expect(results.filter((r) => r.status === 412)).toHaveLength(11);
      expect((await auditRows('objects.record.updated', acc.id)).length).toBe(1);
      const created = await Promise.all(
        Array.from({ length: 16 }, (_, i) => call('POST', '/data/account', users.wendy.token, { name: `Storm ${i}` })),
      );
      expect(created.every((r) => r.status === 201)).toBe(true);
      for (const r of created) expect((await auditRows('objects.record.created', r.body.id)).length).toBe(1);
      const big = await call('POST', '/data/account', users.wendy.token, JSON.stringify({ name: 'x'.repeat(10 * 1024 * 1024) }));
      expect(big.status).toBe(413);
    });

    it('F1: the same Idempotency-Key answers the first result, audited once; another body → 409', async () => {
      const h = { 'idempotency-key': 'k-123' };
      const a = await call('POST', '/data/account', users.wendy.token, { name: 'Idem' }, h);
      const b = await call('POST', '/data/account', users.wendy.token, { name: 'Idem' }, h);
      expect([a.status, b.status]).toEqual([201, 201]);
      expect(b.body.id).toBe(a.body.id);
      expect(b.headers.get('idempotent-replayed')).toBe('true');
      expect((await auditRows('objects.record.created', a.body.id)).length).toBe(1);
      expect((await call('POST', '/data/account', users.wendy.token, { name: 'Other' }, h)).status).toBe(409);
      const [c, d] = await Promise.all([
        call('POST', '/data/account', users.wendy.token, { name: 'Race' }, { 'idempotency-key': 'k-race' }),
        call('POST', '/data/account', users.wendy.token, { name: 'Race' }, { 'idempotency-key': 'k-race' }),
      ]);
      expect([c.status, d.status]).toEqual([201, 201]);
      expect(c.body.id).toBe(d.body.id);
    });

    it('DELETE needs full access; the owner may delete', async () => {
      const acc = await ok(call('POST', '/data/account', users.wendy.token, { name: 'ToDelete' }), 201);
      expect((await call('DELETE', `/data/account/${acc.id}`, users.wendy.token, undefined, { 'if-match': '"9"' })).status).toBe(412);
      expect((await call('DELETE', `/data/account/${acc.id}`, users.wendy.token)).status).toBe(204);
      expect((await call('GET', `/data/account/${acc.id}`, users.wendy.token)).status).toBe(404);
      expect((await auditRows('objects.record.deleted', acc.id)).length).toBe(1);
    });
  });

  describe('ObjectQL and list parameters', () => {
    it('R5/O4: filtering, sorting or selecting a non-readable field → 403 field_not_readable', async () => {
      for (const params of [
        { where: { ssn: '1' } },
        { orderBy: 'ssn' },
        { fields: 'name,ssn' },
        { where: { $or: [{ name: 'x' }, { ssn: { $exists: true } }] } },
      ]) {
        const res = await call('GET', `/data/account${q(params)}`, users.wendy.token);
        expect([res.status, res.body.code]).toEqual([403, 'field_not_readable']);
      }
      const ql = await call('POST', '/query', users.wendy.token, { object: 'account', where: { ssn: { $startsWith: '1' } } });
      expect([ql.status, ql.body.code]).toEqual([403, 'field_not_readable']);
      // victor may filter on it
      expect((await call('GET', `/data/account${q({ where: { ssn: { $null: true } } })}`, users.victor.token)).status).toBe(200);
    });

    it('O5/O6/O7/O8: bad operators, prototype keys, empty $in, oversized inputs → fast 4xx', async () => {
      for (const where of [{ $where: 'sleep(10)' }, { name: { $regex: '.*' } }, { 'name; DROP TABLE x': 1 }, { name: { $foo: 1 } }]) {
        const res = await call('GET', `/data/account${q({ where })}`, users.wendy.token);
        expect(res.status).toBe(400);
      }
      const proto = await call('POST', '/query', users.wendy.token, '{"object":"account","where":{"__proto__":{"x":1}}}');
      expect(proto.status).toBe(400);
      expect(({} as Json).x).toBeUndefined();
      expect((await ok(call('GET', `/data/account${q({ where: { region: { $in: [] } } })}`, users.wendy.token))).items).toEqual([]);
      let deep: Json = { name: 'x' };
      for (let i = 0; i < 1000; i++) deep = { $and: [deep] };
      expect((await call('POST', '/query', users.wendy.token, { object: 'account', where: deep })).status).toBe(400);
      const huge = await call('POST', '/query', users.wendy.token, {
        object: 'account',
        where: { name: { $in: Array.from({ length: 70_000 }, (_, i) => `n${i}`) } },
      });
      expect(huge.status).toBeGreaterThanOrEqual(400);
      expect(huge.status).toBeLessThan(500);
      for (const params of [{ limit: '1000000000' }, { offset: '99999999' }, { limit: '0' }, { bogus: '1' }]) {
        expect((await call('GET', `/data/account${q(params)}`, users.wendy.token)).status).toBe(400);
      }
      expect((await call('GET', `/data/account${q({ cursor: 'garbage!' })}`, users.wendy.token)).status).toBe(400);
    });

    it('ObjectQL: fields, where, orderBy through POST query', async () => {
      const res = await ok(
        call('POST', '/query', users.wendy.token, {
          object: 'account',
          fields: ['name', 'revenue'],
          where: { $or: [{ name: { $startsWith: 'Acme' } }, { name: 'Idem' }] },
          orderBy: [{ field: 'name', order: 'desc' }],
          limit: 10,
        }),
      );
      expect(res.items.map((r: Json) => r.name)).toEqual(['Idem', 'Acme 2']);
      expect(Object.keys(res.items[0]).sort()).toEqual(['id', 'name', 'revenue']);
    });

    it('O10: keyset pages concatenate to the full ordered list under concurrent inserts', async () => {
      const token = users.eric.token;
      for (let i = 0; i < 23; i++) {
        await ok(
          call('POST', '/data/account', token, { name: `P${String(i).padStart(2, '0')}`, ...(i % 4 === 0 ? {} : { revenue: i % 5 }) }),
          201,
        );
      }
      const orderBy = 'revenue,-name';
      const full = (await ok(call('GET', `/data/account${q({ orderBy, limit: '200' })}`, token))).items.map((r: Json) => r.id);
      expect(full.length).toBe(23);
      const seen: string[] = [];
      let cursor: string | undefined;
      let inserted = 0;
      do {
        // concurrent writers insert rows on both sides of the cursor while the page is read
        const [page] = await Promise.all([
          ok(call('GET', `/data/account${q({ orderBy, limit: '4', ...(cursor ? { cursor } : {}) })}`, token)),
          call('POST', '/data/account', token, { name: `Z${inserted}`, revenue: 0 }),
          call('POST', '/data/account', token, { name: `Q${inserted}`, revenue: 100 }),
          call('POST', '/data/account', token, { name: `N${inserted}` }),
        ]);
        seen.push(...page.items.map((r: Json) => r.id));
        cursor = page.nextCursor;
        inserted++;
      } while (cursor);
      expect(new Set(seen).size).toBe(seen.length); // no duplicates
      const original = seen.filter((id) => full.includes(id));
      expect(original).toEqual(full); // no holes, same order
    });
  });

  describe('agents (R7)', () => {
    it('a delegated token never exceeds user ∩ scopes and never writes directly', async () => {
      const res = await fetch(`${base}/api/v1/auth/token-exchange`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: admin,
          subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
          scope: 'data:read data:write',
          client_id: 'test-agent',
          agent_name: 'Test agent',
        }),
      });
      expect(res.status).toBe(200);
      const agent = ((await res.json()) as { access_token: string }).access_token;
      // user ∩ scopes: the admin's view_all_data passes under data:read (reads as the admin does), but no
      // administrative capability does, and no write is ever direct.
      const list = await call('GET', '/data/account?limit=5', agent);
      expect(list.status).toBe(200);
      const me = await ok(call('GET', '/auth/me', agent));
      expect(me.capabilities).not.toEqual(expect.arrayContaining(['manage_users']));
      expect(me.capabilities).not.toContain('manage_sharing');
      const readOnly = await fetch(`${base}/api/v1/auth/token-exchange`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: admin,
          subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
          scope: 'actions:execute',
          client_id: 'test-agent',
          agent_name: 'Test agent',
        }),
      });
      const noData = ((await readOnly.json()) as { access_token: string }).access_token;
      const refused = await call('GET', '/data/account?limit=5', noData);
      expect(refused.status).toBeGreaterThanOrEqual(403);
      expect(refused.status).toBeLessThanOrEqual(404);
      const someId = (await ok(call('GET', '/data/account?limit=1', admin))).items[0].id;
      for (const [method, path, body] of [
        ['POST', '/data/account', { name: 'By agent' }],
        ['PATCH', `/data/account/${someId}`, { name: 'x' }],
        ['DELETE', `/data/account/${someId}`, undefined],
        ['POST', `/data/account/${someId}/shares`, { granteeType: 'user', granteeId: users.eric.id, accessLevel: 'read' }],
      ] as const) {
        const res = await call(method, path, agent, body, { 'if-match': '"1"' });
        expect([res.status, res.body.code]).toEqual([403, 'forbidden']);
      }
    });
  });

  describe('freshness', () => {
    it('a list never decides on metadata another replica has changed, though this one has it cached', async () => {
      const mine = await ok(call('POST', '/data/account', users.wendy.token, { name: 'wendy only' }), 201);
      const listIds = async (token: string): Promise<string[]> =>
        (await ok(call('GET', `/data/account${q({ where: { id: mine.id } })}`, token))).items.map((r: Json) => r.id);
      expect(await listIds(users.eric.token)).toEqual([]); // private: eric (another branch) does not see it; the catalog is warm
      const table = 'objects.object_definition';
      const saved = (await pg.query(`SELECT definition FROM ${table} WHERE org_id = $1 AND name = 'account'`, [orgId])).rows[0].definition;
      // "Another replica" opens the object to everyone: written straight to the database, so this
      // process's cached catalog is stale and only the stamp read with the rows can tell.
      const bump = async (definition: Json): Promise<void> => {
        await pg.query(
          `UPDATE ${table} SET definition = $2, version = version + 1, updated_at = clock_timestamp() WHERE org_id = $1 AND name = 'account'`,
          [orgId, definition],
        );
      };
      try {
        await bump({ ...saved, sharingModel: 'public_read' });
        expect(await listIds(users.eric.token)).toEqual([mine.id]);
        // … and closed again: the very next list hides it (a non-empty page proves nothing stale either).
        await bump(saved);
        expect(await listIds(users.eric.token)).toEqual([]);
        expect(await listIds(users.wendy.token)).toEqual([mine.id]);
      } finally {
        await bump(saved);
      }
    });

    it('O9: a revoked permission set is effective at once, even with warm caches', async () => {
      const token = users.eric.token;
      expect((await call('GET', '/data/account', token)).status).toBe(200);
      const assignments = await ok(call('GET', `/permission-sets/${salesSetId}/assignments`, admin));
      const mine = assignments.items.find((a: Json) => a.userId === users.eric.id);
      // Readers hammer the list while the revoke commits: no read that starts after the revoke's
      // answer may succeed.
      let revokedAt = Number.POSITIVE_INFINITY;
      let stop = false;
      const leaks: number[] = [];
      const readers = Array.from({ length: 3 }, async () => {
        while (!stop) {
          const started = Date.now();
          const res = await call('GET', '/data/account?limit=1', token);
          if (res.status === 200 && started > revokedAt) leaks.push(started);
        }
      });
      await ok(call('DELETE', `/permission-sets/${salesSetId}/assignments/${mine.id}`, admin), 204);
      revokedAt = Date.now();
      const until = Date.now() + 300;
      while (Date.now() < until) await call('GET', '/data/account?limit=1', token);
      stop = true;
      await Promise.all(readers);
      expect(leaks).toEqual([]);
      // Refused either way: 403, or 429 once the hammering readers spent the credential's refusal budget (ADR 0014).
      const after = await call('GET', '/data/account', token);
      expect([403, 429]).toContain(after.status);
      expect([403, 429]).toContain((await call('POST', '/data/account', token, { name: 'late' })).status);
    });

    it('R10: a request newer than the replica waits, then 503; it never decides on older data', async () => {
      const saved = (
        await pg.query('SELECT directory_version, announced_version FROM objects.directory_replica_state WHERE org_id = $1', [orgId])
      ).rows[0];
      await pg.query('UPDATE objects.directory_replica_state SET directory_version = 0, announced_version = 0 WHERE org_id = $1', [orgId]);
      const started = Date.now();
      const res = await call('GET', '/data/account', users.wendy.token);
      expect(res.status).toBe(503);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      // The replica catches up (here: restored) → the same request is answered.
      await pg.query('UPDATE objects.directory_replica_state SET directory_version = $2, announced_version = $3 WHERE org_id = $1', [
        orgId,
        saved.directory_version,
        saved.announced_version,
      ]);
      expect((await call('GET', '/data/account', users.wendy.token)).status).toBe(200);
    });
  });
});
