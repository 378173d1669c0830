import type { Request } from 'playwright-core';
import { CONSOLE_ADMIN, startConsoleBrowser, type ConsoleBrowser } from '../support/console-browser';
import { startFakeModelServer, type FakeModelServer, type Step } from '../support/fake-model-server';
import { pollUntil } from '../support/poll';

// A real browser on a shared 2-core machine: each step can take seconds.
jest.setTimeout(300_000);

/**
 * The agents page in Debian's chromium against the all-in-one with the demo and the scripted,
 * OpenAI-compatible fake model the runtime's own tests use: the west rep starts a conversation with
 * a profile, her message streams back over SSE, the agent's tool call files a pending change shown
 * inline with its state and a link to the approval; the VP approves and the page shows the new
 * state and the agent's follow-up without a reload.
 */
describe('console agents page (browser)', () => {
  let cb: ConsoleBrowser;
  let fake: FakeModelServer;
  let admin: string;
  let opportunityId: string;
  let profileId: string;

  beforeAll(async () => {
    cb = await startConsoleBrowser('console_agents');
    fake = await startFakeModelServer();
    admin = await cb.token(CONSOLE_ADMIN);
    const put = async (name: string, value: unknown): Promise<void> => {
      const res = await cb.api('PUT', `/agent/settings/${name}`, admin, { value });
      if (res.status !== 200) throw new Error(`setting ${name}: ${res.status} ${JSON.stringify(res.body)}`);
    };
    await put('model.base_url', fake.url);
    await put('model.name', 'fake-model');
    const profile = await cb.api('POST', '/agent/profiles', admin, {
      name: 'Sales copilot',
      systemPrompt: 'Help the sales team.',
      scopes: ['data:read', 'data:write'],
    });
    expect(profile.status).toBe(201);
    profileId = profile.body.id;
    const rep = await cb.token(cb.demo.rep);
    const list = await cb.api('POST', '/query', rep, { object: 'opportunity', where: { name: 'Acme renewal' } });
    opportunityId = list.body.items[0].id;
    const script: Step[] = [
      {
        toolCalls: [
          {
            name: 'update_record',
            arguments: JSON.stringify({
              object: 'opportunity',
              id: opportunityId,
              values: { amount: 13000 },
              justification: 'Customer asked for one more seat',
            }),
          },
        ],
      },
      { text: 'I proposed raising the amount to 13000; it waits for approval.', chunks: 4 },
      { text: 'The change was approved and applied.', chunks: 2 },
    ];
    fake.script((_req, n) => script[n] ?? { text: 'done' }); // n counts from 0
  }, 180_000);

  afterAll(async () => {
    await fake?.close();
    await cb?.stop();
  });

  it('the rep talks to the agent: streamed answer, the tool call and its pending action inline, approval shown live', async () => {
    const page = await cb.newPage();
    const streamed: string[] = [];
    const live: string[] = [];
    page.on('request', (r: Request) => {
      if (r.url().includes('/messages') && r.method() === 'POST') streamed.push(r.headers().accept ?? '');
      if (r.url().endsWith('/events') && r.method() === 'GET') live.push(r.headers().accept ?? '');
    });
    await cb.signIn(page, cb.demo.rep);
    await cb.go(page, 'Agents');
    await page.getByRole('heading', { name: 'Agents', level: 1 }).waitFor();
    await cb.check(page, '50-agents-empty');
    await page
      .getByLabel(/^Agent profile( \*)?$/)
      .first()
      .click();
    await page.getByRole('option', { name: 'Sales copilot' }).click();
    await page.getByRole('button', { name: 'Start conversation' }).click();
    await page.getByRole('heading', { name: 'Conversation' }).waitFor();

    await page.getByRole('textbox', { name: 'Message' }).fill('Raise Acme renewal to 13000, they want one more seat.');
    await page.getByRole('button', { name: 'Send' }).click();
    const pendingBadge = page.getByTestId('pending-state');
    await pendingBadge.waitFor();
    expect(await pendingBadge.innerText()).toMatch(/pending/i);
    expect(await page.getByTestId('tool-call').first().innerText()).toContain('update_record');
    await page.getByText('I proposed raising the amount to 13000; it waits for approval.').waitFor();
    expect(streamed).toEqual([expect.stringContaining('text/event-stream')]);
    // The conversation page also follows the conversation's live events (SSE) while it is open.
    expect(live).toContainEqual(expect.stringContaining('text/event-stream'));
    await pollUntil(async () => (await page.getByTestId('conversation-state').textContent()) === 'waiting_approval', {
      what: 'the conversation to wait for approval',
    });
    await cb.check(page, '51-agents-conversation-pending');

    // The link leads to the approval; the rep cannot approve her own agent's change, the VP can.
    const href = await page.getByRole('link', { name: 'Open the approval' }).first().getAttribute('href');
    const actionId = href!.split('/').pop()!;
    const vp = await cb.token(cb.demo.vp);
    const action = await cb.api('GET', `/approvals/${actionId}`, vp);
    expect(action.body).toMatchObject({ kind: 'record.update', state: 'pending' });
    const approved = await cb.api('POST', `/approvals/${actionId}/approve`, vp, {}, { 'if-match': `"${action.body.revision}"` });
    expect(approved.status).toBe(200);

    // The page watches the conversation: the decision and the agent's follow-up arrive without a reload.
    await pollUntil(async () => !/pending/i.test(await pendingBadge.innerText()), { what: 'the decided state inline', timeoutMs: 60_000 });
    await page.getByText('The change was approved and applied.').waitFor({ timeout: 60_000 });
    const rep = await cb.token(cb.demo.rep);
    expect((await cb.api('GET', `/data/opportunity/${opportunityId}`, rep)).body.amount).toBe(13000);
    await cb.check(page, '52-agents-conversation-approved');

    await cb.go(page, 'Agents');
    await page.getByRole('table', { name: 'Your conversations' }).waitFor();
    await cb.check(page, '53-agents-list');
    await page.close();
  });

  it('a message to a conversation of another user is not found (problem code and request id)', async () => {
    const vp = await cb.token(cb.demo.vp);
    const started = await cb.api('POST', '/agent/conversations', vp, { profileId });
    expect(started.status).toBe(201);
    const page = await cb.newPage();
    await cb.signIn(page, cb.demo.rep);
    await cb.goPath(page, `/agents/${started.body.id as string}`);
    await page.getByTestId('problem-code').waitFor();
    expect(await page.getByTestId('problem-code').innerText()).toBe('not_found');
    expect(await page.getByTestId('problem-request-id').innerText()).toMatch(/^[0-9a-f-]{36}$/);
    await page.close();
  });

  it('caused no Content-Security-Policy violation on any page', () => {
    expect(cb.cspViolations).toEqual([]);
  });
});
