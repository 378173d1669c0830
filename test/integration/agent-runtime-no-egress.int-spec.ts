import dgram from 'node:dgram';
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { Client as Pg } from 'pg';
import { createAgentUser } from '../support/agent-gateway';
import { apiClient, type Json } from '../support/api';
import { startFakeModelServer, type FakeModelServer } from '../support/fake-model-server';
import { login, startTestHost, type TestHost } from '../support/host';
import { pollUntil } from '../support/poll';

const PASSWORD = 'a-long-enough-password';

/** One attempt to reach somewhere: a socket connect, a TLS connect, an HTTP(S) request, a datagram. */
interface Attempt {
  via: string;
  host: string;
  port: string;
}

/**
 * Watches, in this process, every way Node opens a connection or resolves a name: every
 * `net.Socket` connect (plain TCP, TLS, `http`/`https` agents, `fetch`, `pg`, the `openai` client
 * all end there), `tls.connect`, `http(s).request` / `get`, UDP sockets, and every `dns.lookup` /
 * `dns.resolve*` (callback and promise APIs). Nothing is blocked: it records, then calls the original.
 */
function watchEgress(): { attempts: Attempt[]; lookups: string[]; restore(): void } {
  const attempts: Attempt[] = [];
  const lookups: string[] = [];
  const restores: Array<() => void> = [];
  const patch = <T extends object>(target: T, key: keyof T & string, record: (args: unknown[]) => void): void => {
    const original = target[key] as unknown as (...a: unknown[]) => unknown;
    if (typeof original !== 'function') return;
    (target as Record<string, unknown>)[key] = function (this: unknown, ...args: unknown[]) {
      record(args);
      return original.apply(this, args);
    };
    restores.push(() => ((target as Record<string, unknown>)[key] = original));
  };
  /** host and port of connect()'s arguments: (options), (port, host), (path), or Node's normalised [options, cb]. */
  const endpoint = (args: unknown[]): { host: string; port: string } => {
    const first = Array.isArray(args[0]) ? args[0][0] : args[0];
    if (typeof first === 'object' && first !== null) {
      const o = first as { host?: string; hostname?: string; port?: number | string; path?: string };
      if (o.path && o.port === undefined) return { host: `unix:${o.path}`, port: '' };
      return { host: o.host ?? o.hostname ?? 'localhost', port: String(o.port ?? '') };
    }
    if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first)))
      return { host: typeof args[1] === 'string' ? args[1] : 'localhost', port: String(first) };
    return { host: `unix:${String(first)}`, port: '' };
  };
  const requestTarget = (args: unknown[]): { host: string; port: string } => {
    const first = args[0];
    if (typeof first === 'string' || first instanceof URL) {
      const url = new URL(String(first));
      return { host: url.hostname, port: url.port };
    }
    const o = (first ?? {}) as { host?: string; hostname?: string; port?: number | string };
    return { host: o.hostname ?? o.host ?? 'localhost', port: String(o.port ?? '') };
  };
  patch(net.Socket.prototype, 'connect', (args) => attempts.push({ via: 'net', ...endpoint(args) }));
  patch(tls, 'connect', (args) => attempts.push({ via: 'tls', ...endpoint(args) }));
  for (const [name, mod] of [
    ['http', http],
    ['https', https],
  ] as const) {
    patch(mod, 'request', (args) => attempts.push({ via: name, ...requestTarget(args) }));
    patch(mod, 'get', (args) => attempts.push({ via: name, ...requestTarget(args) }));
  }
  patch(dgram.Socket.prototype, 'send', (args) =>
    attempts.push({
      via: 'udp',
      host: String(args.find((a) => typeof a === 'string') ?? ''),
      port: String(args.find((a) => typeof a === 'number') ?? ''),
    }),
  );
  patch(dgram.Socket.prototype, 'connect', (args) => attempts.push({ via: 'udp', host: String(args[1] ?? ''), port: String(args[0]) }));
  for (const api of [dns, dns.promises] as Array<Record<string, unknown>>)
    for (const key of Object.keys(api))
      if (/^(lookup|resolve)/.test(key) && typeof api[key] === 'function')
        patch(api, key, (args) => lookups.push(`${key} ${String(args[0])}`));
  return {
    attempts,
    lookups,
    restore: () =>
      restores
        .splice(0)
        .reverse()
        .forEach((r) => r()),
  };
}

/**
 * Issue #15's promise, "with none configured Custodian never opens a connection anywhere", over the
 * whole conversation surface rather than one turn: with no model provider configured, the host (all
 * five services in this jest process, in-process bus, real PostgreSQL) is started, and profiles,
 * conversations, many messages (JSON and streamed), the live event stream, lists, export, settings
 * and the retention purge are all used while every connection and name lookup of the process is
 * watched. Only the test database's address and the host's own HTTP port (the test's calls) may
 * appear; no name is ever resolved. The last test shows the watch sees a model connection once one
 * is configured, so the first cannot pass by seeing nothing.
 */
describe('agent runtime with no model provider: no outbound connection on the whole conversation path', () => {
  let t: TestHost;
  let db: Pg;
  let watch: ReturnType<typeof watchEgress>;
  const { call, ok } = apiClient(() => t.host.url);
  const tokens: Record<string, string> = {};
  const scopes = ['data:read', 'data:write'];

  /** The attempts that reach anything but the test database and the host's own HTTP port. */
  const outbound = (): Attempt[] => {
    const pg = new URL(t.db.url);
    const self = new URL(t.host.url);
    const allowed = new Set([`${pg.hostname}:${pg.port || '5432'}`, `${self.hostname}:${self.port}`]);
    return watch.attempts.filter((a) => !allowed.has(`${a.host}:${a.port}`));
  };
  /**
   * Lookups of names, not of address literals: `listen(0, '127.0.0.1')` (the host's HTTP server)
   * calls dns.lookup with the literal, which getaddrinfo answers without asking anyone.
   */
  const names = (): string[] => watch.lookups.filter((l) => net.isIP(l.slice(l.indexOf(' ') + 1)) === 0);
  const say = (id: string, content: string): Promise<Json> =>
    ok(call('POST', `/agent/conversations/${id}/messages`, tokens.user, { content }));
  const expectNotice = (message: Json): void => {
    expect(message).toMatchObject({ role: 'notice', meta: { code: 'model_not_configured' } });
    expect(message.content).toContain('No model provider is configured');
    expect(message.content).toContain('model.base_url');
  };

  beforeAll(async () => {
    // Before the host starts: its start-up is watched too.
    watch = watchEgress();
    t = await startTestHost('agent_no_egress', { CUSTODIAN_AGENT_RETENTION_SWEEP_MS: '200' });
    db = new Pg({ connectionString: t.db.url });
    await db.connect();
    tokens.admin = (await login(t.host.url)).accessToken;
    tokens.user = (await createAgentUser(t.host.url, tokens.admin, 'user', PASSWORD)).accessToken;
  }, 180_000);

  afterAll(async () => {
    watch?.restore();
    await db?.end();
    await t?.stop();
  });

  it('profiles, conversations, messages (JSON and SSE), live events, lists, export, settings and the retention purge open no connection and resolve no name', async () => {
    // Settings: nothing names a model.
    const settings = await ok(call('GET', '/agent/settings', tokens.admin));
    const byName = new Map<string, Json>(settings.items.map((s: Json) => [s.name, s]));
    expect(byName.get('model.base_url').value ?? null).toBeNull();
    expect(byName.get('model.api_key').secret).toMatchObject({ set: false });

    // Profiles: create, read, list, replace; one made only to be deleted.
    const profile = await ok(
      call('POST', '/agent/profiles', tokens.admin, { name: 'Copilot', model: 'any-model', systemPrompt: 'Help.', scopes }),
      201,
    );
    await ok(
      call('PUT', `/agent/profiles/${profile.id}`, tokens.admin, { name: 'Copilot', model: 'any-model', systemPrompt: 'Help!', scopes }),
    );
    expect((await ok(call('GET', `/agent/profiles/${profile.id}`, tokens.user))).systemPrompt).toBe('Help!');
    expect((await ok(call('GET', '/agent/profiles', tokens.user))).items.map((p: Json) => p.id)).toContain(profile.id);
    const spare = await ok(call('POST', '/agent/profiles', tokens.admin, { name: 'Spare', scopes: ['data:read'] }), 201);
    expect((await call('DELETE', `/agent/profiles/${spare.id}`, tokens.admin)).status).toBe(204);
    await ok(call('GET', `/agent/tools?scopes=${scopes.join(',')}`, tokens.user));

    // A conversation, its live event stream open while messages are posted.
    const id = (await ok(call('POST', '/agent/conversations', tokens.user, { profileId: profile.id }), 201)).id;
    const live = new AbortController();
    const stream = await fetch(`${t.host.url}/api/v1/agent/conversations/${id}/events`, {
      headers: { authorization: `Bearer ${tokens.user}`, accept: 'text/event-stream' },
      signal: live.signal,
    });
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    let liveText = '';
    const reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of stream.body as unknown as AsyncIterable<Uint8Array>) liveText += decoder.decode(chunk, { stream: true });
    })().catch(() => undefined);

    // Several messages, each answered with the notice; the conversation is never stuck.
    for (const content of ['hello', 'are you there?', 'list my accounts', 'one more time']) {
      const answer = await say(id, content);
      expect(answer.state).toBe('failed');
      expect(answer.messages.at(-2)).toMatchObject({ role: 'user', content });
      expectNotice(answer.messages.at(-1));
    }
    // Streamed: the notice arrives as an event, then done.
    const sse = await fetch(`${t.host.url}/api/v1/agent/conversations/${id}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.user}`, 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ content: 'streamed hello' }),
    });
    expect(sse.status).toBe(200);
    const streamed = await sse.text();
    expect(streamed).toContain('model_not_configured');
    expect([...streamed.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]).at(-1)).toBe('done');
    await pollUntil(() => liveText.split('model_not_configured').length - 1 >= 5, { what: 'five notices on the live event stream' });
    live.abort();
    await reading;

    // Reading it back: every user message has its notice.
    const read = await ok(call('GET', `/agent/conversations/${id}`, tokens.user));
    expect(read.messages.map((m: Json) => m.role)).toEqual(Array.from({ length: 5 }, () => ['user', 'notice']).flat());
    for (const m of read.messages.filter((x: Json) => x.role === 'notice')) expectNotice(m);
    expect((await ok(call('GET', '/agent/conversations', tokens.user))).items.map((c: Json) => c.id)).toContain(id);

    // Export: the evidence says nothing left — no egress record.
    const exported = await ok(call('GET', `/agent/conversations/${id}/export`, tokens.user));
    expect(exported.messages).toHaveLength(10);
    expect(exported.egress).toEqual([]);
    expect((await db.query('SELECT count(*)::int AS n FROM agent_gateway.agent_egress')).rows[0].n).toBe(0);
    expect(
      (await db.query(`SELECT count(*)::int AS n FROM agent_gateway.outbox WHERE payload->>'action' = 'agent.model.requested'`)).rows[0].n,
    ).toBe(0);

    // Settings changes and the retention purge.
    const stale = (await ok(call('POST', '/agent/conversations', tokens.user, { profileId: profile.id }), 201)).id;
    expectNotice((await say(stale, 'old')).messages.at(-1));
    await ok(call('PUT', '/agent/settings/retention.conversation_days', tokens.admin, { value: 1 }));
    await db.query(`UPDATE agent_gateway.agent_conversation SET updated_at = now() - interval '2 days' WHERE id = $1`, [stale]);
    await pollUntil(async () => (await call('GET', `/agent/conversations/${stale}`, tokens.user)).status === 404, {
      what: 'the stale conversation purged',
    });
    expect((await call('DELETE', '/agent/settings/retention.conversation_days', tokens.admin)).status).toBe(204);
    expect((await call('GET', `/agent/conversations/${id}`, tokens.user)).status).toBe(200);

    // The watch was live (it saw the database and the test's own calls) and saw nothing else.
    expect(watch.attempts.some((a) => a.port === (new URL(t.db.url).port || '5432'))).toBe(true);
    expect(watch.attempts.some((a) => a.port === new URL(t.host.url).port)).toBe(true);
    expect(outbound()).toEqual([]);
    expect(names()).toEqual([]);
  });

  // The check can fail: the same watch, once model.base_url names an endpoint on loopback.
  describe('once a model is configured', () => {
    let fake: FakeModelServer;
    beforeAll(async () => {
      fake = await startFakeModelServer(() => ({ text: 'hi from the model' }));
    });
    afterAll(async () => {
      await call('DELETE', '/agent/settings/model.base_url', tokens.admin);
      await fake?.close();
    });

    it('the watch sees the connection to it, and the name lookup when the URL names a host', async () => {
      const port = new URL(fake.url).port;
      const profile = await ok(call('POST', '/agent/profiles', tokens.admin, { name: 'Configured', model: 'fake-model', scopes }), 201);
      const id = (await ok(call('POST', '/agent/conversations', tokens.user, { profileId: profile.id }), 201)).id;
      await ok(call('PUT', '/agent/settings/model.max_retries', tokens.admin, { value: 0 }));

      await ok(call('PUT', '/agent/settings/model.base_url', tokens.admin, { value: fake.url }));
      expect((await say(id, 'hello')).messages.at(-1)).toMatchObject({ role: 'assistant', content: 'hi from the model' });
      expect(outbound()).toContainEqual(expect.objectContaining({ host: '127.0.0.1', port }));

      await ok(call('PUT', '/agent/settings/model.base_url', tokens.admin, { value: `http://localhost:${port}/v1` }));
      await say(id, 'hello by name');
      expect(names()).toContain('lookup localhost');
      expect(fake.requests.length).toBeGreaterThanOrEqual(1);
    });
  });
});
