import type { Page, Request } from 'playwright-core';
import { Client } from 'pg';
import { CONSOLE_ADMIN, startConsoleBrowser, type ConsoleBrowser, type Json } from '../support/console-browser';
import { pollUntil } from '../support/poll';

// A real browser on a shared 2-core machine: each step can take seconds.
jest.setTimeout(300_000);

const ROWS = 10_000;

/**
 * The console's administration, sessions and big tables in Debian's chromium against the all-in-one
 * with the demo: a reload keeps the admin signed in (refresh cookie, nothing in storage); the admin
 * creates a user, assigns a permission set, proposes a permission change (pending, linked), creates
 * and revokes an API key (secret shown once), edits roles and groups, writes a model secret that is
 * never shown again; a read-only field is disabled in the record form; a 10,000-row object pages on
 * the server. axe-core on every page, screenshots to test-artifacts/console.
 */
describe('console administration (browser)', () => {
  let cb: ConsoleBrowser;
  let admin: string;
  let orgId: string;

  /** Picks `option` in the Mantine select labelled `label`. */
  const choose = async (page: Page, label: string, option: string): Promise<void> => {
    // A required field's label ends in " *".
    const name = new RegExp(`^${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}( \\*)?$`);
    await page.getByLabel(name).first().click();
    await page.getByRole('option', { name: option, exact: true }).click();
  };

  beforeAll(async () => {
    cb = await startConsoleBrowser('console_admin');
    const session = await cb.api('POST', '/auth/login', undefined, CONSOLE_ADMIN);
    admin = session.body.accessToken;
    orgId = session.body.orgId;
    const ok = async (res: Promise<{ status: number; body: Json }>, status: number): Promise<Json> => {
      const r = await res;
      if (r.status !== status) throw new Error(`expected ${status}, got ${r.status}: ${JSON.stringify(r.body)}`);
      return r.body;
    };
    await ok(
      cb.api('POST', '/meta/objects', admin, {
        name: 'ticket',
        label: 'Ticket',
        sharingModel: 'private',
        fields: [
          { name: 'title', type: 'text', required: true },
          { name: 'status', type: 'select', options: ['open', 'closed'] },
        ],
      }),
      201,
    );
    // The admin reads every ticket; "Ticket editors" edit tickets but only read their status.
    const viewers = await ok(
      cb.api('POST', '/permission-sets', admin, { name: 'Ticket viewers', objects: { ticket: { allowRead: true, viewAllRecords: true } } }),
      201,
    );
    await ok(
      cb.api('POST', '/permission-sets', admin, {
        name: 'Ticket editors',
        objects: { ticket: { allowRead: true, allowEdit: true, viewAllRecords: true, modifyAllRecords: true } },
        fields: { ticket: { status: 'read' } },
      }),
      201,
    );
    const me = await ok(cb.api('GET', '/auth/me', admin), 200);
    await ok(cb.api('POST', `/permission-sets/${viewers.id}/assignments`, admin, { userId: me.userId }), 201);
    // 10,000 rows straight into the object's table (the API would take minutes on this machine).
    const pg = new Client({ connectionString: cb.db.url });
    await pg.connect();
    try {
      await pg.query(
        `INSERT INTO objects."r_${orgId.replace(/-/g, '')}_ticket" (id, org_id, owner_id, created_by, updated_by, title, status)
         SELECT gen_random_uuid(), $1, $2, $2, $2, 'Ticket ' || lpad(i::text, 5, '0'), 'open' FROM generate_series(1, ${ROWS}) i`,
        [orgId, me.userId],
      );
    } finally {
      await pg.end();
    }
  }, 180_000);

  afterAll(async () => {
    await cb?.stop();
  });

  it('a reload keeps the admin signed in: the refresh token is an httpOnly SameSite=Strict cookie on /api/v1/auth, nothing in storage', async () => {
    const page = await cb.newPage();
    await cb.signIn(page, CONSOLE_ADMIN);
    await cb.go(page, 'Users');
    await page.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
    const cookies = await cb.context.cookies();
    expect(cookies.map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite, path: c.path }))).toEqual([
      { name: 'custodian_refresh', httpOnly: true, sameSite: 'Strict', path: '/api/v1/auth' },
    ]);
    expect(await page.evaluate('[localStorage.length, sessionStorage.length, document.cookie]')).toEqual([0, 0, '']);

    const started = Date.now();
    await page.reload();
    await page.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    // Measured and printed, not asserted (a shared, loaded machine).
    process.stderr.write(`console: reload to a signed-in, interactive Users page in ${Date.now() - started} ms\n`);
    expect(await page.getByLabel('Email', { exact: true }).count()).toBe(0);
    // The rotated cookie is a new one.
    expect((await cb.context.cookies())[0]!.value).not.toBe(cookies[0]!.value);

    // Sign-out revokes the session and clears the cookie: a reload shows the sign-in page.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await pollUntil(async () => (await cb.context.cookies()).length === 0, { what: 'the refresh cookie to be cleared', timeoutMs: 30_000 });
    await page.reload();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await page.close();
  });

  it('the admin creates a user, assigns her a permission set, and proposes a permission change that waits for approval', async () => {
    const page = await cb.newPage();
    await cb.signIn(page, CONSOLE_ADMIN);
    await cb.go(page, 'Users');
    const form = page.getByRole('form', { name: 'Create user' });
    await form.getByRole('textbox', { name: 'Email' }).fill('newbie@console.test');
    await form.getByRole('textbox', { name: 'Display name' }).fill('Newbie');
    await form.getByLabel('Initial password').fill('a-long-enough-password');
    await form.getByRole('button', { name: 'Create user' }).click();
    await page.getByText('Created newbie@console.test.').waitFor();
    await page.getByRole('link', { name: 'newbie@console.test' }).waitFor();
    await cb.check(page, '30-admin-users-created');

    // A bad request shows its problem code and request id.
    await form.getByRole('textbox', { name: 'Email' }).fill('newbie@console.test');
    await form.getByRole('textbox', { name: 'Display name' }).fill('Again');
    await form.getByLabel('Initial password').fill('short');
    await form.getByRole('button', { name: 'Create user' }).click();
    await page.getByTestId('problem-code').waitFor();
    expect(await page.getByTestId('problem-code').innerText()).toMatch(/validation_failed|conflict/);
    expect(await page.getByTestId('problem-request-id').innerText()).toMatch(/^[0-9a-f-]{36}$/);

    await page.getByRole('link', { name: 'newbie@console.test' }).click();
    await page.getByRole('heading', { name: 'User: newbie@console.test' }).waitFor();
    await choose(page, 'Assign permission set', 'Ticket editors');
    await page.getByRole('button', { name: 'Assign', exact: true }).click();
    await page.getByText('Assigned.').waitFor();
    await page.getByRole('list', { name: 'Permission sets of this user' }).getByText('Ticket editors').waitFor();
    await cb.check(page, '31-admin-user-detail');
    const users = (await cb.api('GET', '/users?limit=200', admin)).body.items as Json[];
    const newbie = users.find((u) => u.email === 'newbie@console.test');
    const sets = (await cb.api('GET', '/permission-sets?limit=200', admin)).body.items as Json[];
    const editors = sets.find((s) => s.name === 'Ticket editors');
    const assigned = (await cb.api('GET', `/permission-sets/${editors.id}/assignments`, admin)).body.items as Json[];
    expect(assigned.map((a) => a.userId)).toContain(newbie.id);

    // Permission sets: the matrix, edited; proposing files a pending permission.change, linked.
    await cb.go(page, 'Permission sets');
    await choose(page, 'Permission set', 'Sales Finance');
    await page.getByRole('table', { name: 'Sales Finance object access' }).waitFor();
    await cb.check(page, '32-admin-permission-set-matrix');
    await page.getByRole('checkbox', { name: 'account: Read' }).check();
    await page.getByRole('textbox', { name: 'Justification (for a proposal)' }).fill('Finance reconciles accounts too');
    await page.getByRole('button', { name: 'Propose for approval' }).click();
    const pending = page.getByTestId('pending-notice');
    await pending.waitFor();
    expect(await pending.innerText()).toContain('permission.change');
    await cb.check(page, '33-admin-permission-change-pending');
    await pending.getByRole('link', { name: 'Open the approval' }).click();
    await page.getByRole('heading', { name: 'permission.change on permission_set' }).waitFor();
    await page.getByTestId('approval-diff').waitFor();
    // Nothing changed yet: the set still has no account access.
    const finance = ((await cb.api('GET', '/permission-sets?limit=200', admin)).body.items as Json[]).find(
      (s) => s.name === 'Sales Finance',
    );
    expect(finance.body.objects.account).toBeUndefined();
    const actions = (await cb.api('GET', '/approvals?mine=true', admin)).body.items as Json[];
    expect(actions.filter((a) => a.kind === 'permission.change').map((a) => a.state)).toContain('pending');

    // Saving directly applies it now (200) — or, if an approval policy catches it, shows the pending action.
    await cb.go(page, 'Permission sets');
    await choose(page, 'Permission set', 'Ticket viewers');
    await page.getByRole('checkbox', { name: 'ticket: Create' }).check();
    await page.getByRole('button', { name: 'Save permission set' }).click();
    await page.getByText('Saved: the new permissions apply now.').or(page.getByTestId('pending-notice')).waitFor();
    await page.close();
  });

  it('API keys: the secret is shown once, then revoked; roles, groups, sharing, agent profiles and a write-only model secret', async () => {
    const page = await cb.newPage();
    await cb.signIn(page, CONSOLE_ADMIN);
    await cb.go(page, 'API keys');
    await page.getByRole('textbox', { name: 'Key name' }).fill('ci key');
    await page.getByRole('button', { name: 'Create API key' }).click();
    const secret = page.getByTestId('api-key-secret');
    await secret.waitFor();
    const key = /cak_[0-9a-f]+_[A-Za-z0-9_-]+/.exec(await secret.innerText())![0];
    expect((await cb.api('GET', '/auth/me', key)).status).toBe(200);
    await cb.check(page, '34-admin-api-key-created');
    await page.getByRole('button', { name: 'I stored it, hide it' }).click();
    expect(await page.content()).not.toContain(key);
    await page.getByRole('button', { name: 'Revoke ci key' }).click();
    await pollUntil(async () => (await cb.api('GET', '/auth/me', key)).status === 401, {
      what: 'the revoked key to be refused',
      timeoutMs: 30_000,
    });

    await cb.go(page, 'Roles');
    await page.getByRole('textbox', { name: 'New role name' }).fill('rep_north');
    await choose(page, 'Parent role', 'vp_sales');
    await page.getByRole('button', { name: 'Create role' }).click();
    await page.getByText('Role rep_north created.').waitFor();
    await choose(page, 'Role to move', 'rep_north');
    await choose(page, 'New parent (empty: top)', 'rep_west');
    await page.getByRole('button', { name: 'Move role' }).click();
    await page.getByText('Role moved.').waitFor();
    const tree = page.getByRole('navigation', { name: 'Role hierarchy' });
    await pollUntil(async () => /rep_west\s+rep_north/.test(await tree.innerText()), {
      what: 'the moved role under rep_west',
      timeoutMs: 30_000,
    });
    await cb.check(page, '35-admin-roles');

    await cb.go(page, 'Groups');
    await page.getByRole('textbox', { name: 'New group name' }).fill('north_team');
    await page.getByRole('button', { name: 'Create group' }).click();
    await page.getByRole('button', { name: 'north_team' }).click();
    await page.getByLabel('Add member', { exact: true }).first().click();
    await page.getByRole('option', { name: 'newbie@console.test' }).click();
    await page.getByRole('button', { name: 'Add member' }).click();
    await page.getByRole('button', { name: 'Remove newbie@console.test' }).waitFor();
    await cb.check(page, '36-admin-groups');

    await cb.go(page, 'Sharing rules');
    await page.getByRole('cell', { name: 'West accounts to the west team', exact: true }).waitFor();
    await cb.check(page, '37-admin-sharing');

    await cb.go(page, 'Agent profiles');
    await page.getByRole('textbox', { name: 'Profile name' }).fill('Sales copilot');
    await page.getByRole('textbox', { name: 'Model (empty: the org default)' }).fill('fake-model');
    await page.getByRole('button', { name: 'Create profile' }).click();
    await page.getByText('Profile Sales copilot created.').waitFor();
    await cb.check(page, '38-admin-agent-profiles');

    await cb.go(page, 'Model settings');
    const apiKeyCell = page.locator('td[data-setting="model.api_key"]');
    await apiKeyCell.waitFor();
    expect(await apiKeyCell.textContent()).toContain('not set');
    const SECRET = 'sk-console-e2e-do-not-show-7f3a';
    await page.getByLabel('New value of model.api_key').fill(SECRET);
    await page.getByRole('button', { name: 'Save model.api_key' }).click();
    await pollUntil(async () => /^set/.test((await apiKeyCell.textContent()) ?? ''), {
      what: 'the secret to read "set"',
      timeoutMs: 30_000,
    });
    expect(await page.getByLabel('New value of model.api_key').inputValue()).toBe('');
    expect(await page.content()).not.toContain(SECRET);
    const settings = await cb.api('GET', '/agent/settings', admin);
    expect(JSON.stringify(settings.body)).not.toContain(SECRET);
    await cb.check(page, '39-admin-model-settings');
    await page.close();
  });

  it('a read-only field is disabled in the record form and never sent; a 10,000-row object pages on the server', async () => {
    const page = await cb.newPage();
    // The admin reads all 10,000 tickets: the table asks for one page of 25 at a time.
    const queries: Array<{ body: Json; records?: number }> = [];
    page.on('request', (r: Request) => {
      if (r.url().endsWith('/api/v1/query') && r.method() === 'POST') queries.push({ body: r.postDataJSON() });
    });
    page.on('response', async (r) => {
      if (!r.url().endsWith('/api/v1/query')) return;
      const body = (await r.json().catch(() => undefined)) as Json;
      const q = queries.find((x) => x.records === undefined);
      if (q && body?.items) q.records = body.items.length;
    });
    await cb.signIn(page, CONSOLE_ADMIN);
    await cb.go(page, 'Tickets');
    await page.getByRole('button', { name: 'Next page' }).waitFor();
    await pollUntil(async () => (await page.locator('tbody tr').count()) === 25, { what: 'the first page of 25 rows', timeoutMs: 30_000 });
    await page.getByRole('button', { name: 'Next page' }).click();
    await page.getByText('Page 2').waitFor();
    await pollUntil(async () => queries.filter((q) => q.records !== undefined).length >= 2, { what: 'the second page', timeoutMs: 30_000 });
    expect(queries).toHaveLength(2);
    expect(queries.map((q) => q.body.limit)).toEqual([25, 25]);
    expect(queries.map((q) => q.records)).toEqual([25, 25]);
    expect(queries[1]!.body.cursor).toEqual(expect.any(String));
    process.stderr.write(`console: ${ROWS}-row object — ${queries.length} POST /query requests for 2 pages, 25 rows each\n`);
    await cb.check(page, '40-records-10000-rows');
    await page.close();

    // newbie: Ticket editors (edit on ticket, status read only).
    const editor = await cb.newPage();
    await cb.signIn(editor, { email: 'newbie@console.test', password: 'a-long-enough-password' });
    await cb.go(editor, 'Tickets');
    await editor
      .getByRole('link', { name: /^Ticket \d{5}$/ })
      .first()
      .click();
    await editor.getByRole('button', { name: 'Edit' }).click();
    const title = editor.getByRole('textbox', { name: 'title' });
    const status = editor.locator('[data-field-input="status"]');
    await title.waitFor();
    expect(await title.isEnabled()).toBe(true);
    expect(await status.isDisabled()).toBe(true);
    await editor.getByText('Read only for you').waitFor();
    await cb.check(editor, '41-record-edit-read-only-field');
    const patches: Json[] = [];
    editor.on('request', (r: Request) => {
      if (r.method() === 'PATCH') patches.push(r.postDataJSON());
    });
    await title.fill('Renamed by newbie');
    await editor.getByRole('button', { name: 'Save' }).click();
    await editor.getByText('Saved.').waitFor();
    expect(patches).toEqual([{ title: 'Renamed by newbie' }]);
    await editor.close();
  });

  it('caused no Content-Security-Policy violation on any page', () => {
    expect(cb.cspViolations).toEqual([]);
  });
});
