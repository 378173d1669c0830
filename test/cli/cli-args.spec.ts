import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse, run } from '../../cli/run';
import { UsageError } from '../../cli/io';
import { fakeIo } from '../support/cli';

/** The custodian CLI in-process: argument parsing, usage and exit codes (docs/cli.md). */
describe('custodian argument parsing', () => {
  let home: string;
  beforeAll(() => {
    home = mkdtempSync(path.join(tmpdir(), 'custodian-cli-'));
  });
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it('parse() returns options and positionals, and turns unknown options and wrong arity into usage errors', () => {
    expect(
      parse(['--name', 'x', '--scope', 'a', '--scope', 'b'], { name: { type: 'string' }, scope: { type: 'string', multiple: true } }, 'u'),
    ).toEqual({
      values: { name: 'x', scope: ['a', 'b'] },
      positionals: [],
    });
    expect(parse(['id-1', '--url', 'http://h'], {}, 'u', 1).positionals).toEqual(['id-1']);
    expect(() => parse(['--nope'], {}, 'u')).toThrow(UsageError);
    expect(() => parse([], {}, 'u', 1)).toThrow('expected 1 argument(s)');
    expect(() => parse(['extra'], {}, 'u')).toThrow('unexpected argument extra');
    expect(() => parse(['--name'], { name: { type: 'string' } }, 'u')).toThrow(UsageError);
  });

  it.each([
    [[], 'Usage: custodian <command>'],
    [['frobnicate'], 'unknown command frobnicate'],
    [['users', 'lsit'], 'unknown users command lsit'],
    [['users', 'list', '--bogus'], "Unknown option '--bogus'"],
    [['roles', 'create'], '--name is required'],
    [['api-keys', 'revoke'], 'expected 1 argument(s)'],
    [['approvals', 'reject', 'some-id'], '--reason is required'],
    [['audit', 'archive'], '--before is required'],
    [['settings', 'set'], 'expected 1 argument(s)'],
    [['bundle', 'apply'], 'expected 1 argument(s)'],
    [['login', '--password', 'x'], "Unknown option '--password'"],
    [['users', 'show'], 'expected 1 argument(s)'],
    [['users', 'update', 'u-1'], 'nothing to change'],
    [['users', 'update', 'u-1', '--active', 'yes'], '--active must be true or false'],
    [['roles', 'update', 'r-1'], 'nothing to change'],
    [['roles', 'delete'], 'expected 1 argument(s)'],
    [['groups', 'add-member', 'g-1'], '--user is required'],
    [['groups', 'add-member', '--user', 'u-1'], 'expected 1 argument(s)'],
    [['groups', 'remove-member', 'g-1'], '--user is required'],
    [['groups', 'members'], 'expected 1 argument(s)'],
    [['permission-sets', 'assign', 's-1'], 'give exactly one of --user, --group'],
    [['permission-sets', 'assign', 's-1', '--user', 'u', '--group', 'g'], 'give exactly one of --user, --group'],
    [['permission-sets', 'unassign', 's-1'], 'give exactly one of --user, --group, --assignment'],
    [['permission-sets', 'assignments'], 'expected 1 argument(s)'],
    [['bundle', 'diff', 'a.yaml', '--progress'], "Unknown option '--progress'"],
  ])('%j is a usage error: exit 2 and the usage on stderr', async (argv, message) => {
    const io = fakeIo({ HOME: home });
    expect(await run(argv, io)).toBe(2);
    expect(io.err()).toContain(message);
    expect(io.err()).toMatch(/Usage: custodian/);
    expect(io.out()).toBe('');
  });

  // The local audit commands (they replaced apps/audit/src/cli/{verify,reconcile}.ts): bad input is refused
  // before any connection (the database URL here is unreachable) with a one-line message, then the usage.
  it.each([
    [['audit', 'reconcile'], '--database-url is required'],
    [['audit', 'reconcile', '--database-url'], "Option '--database-url <value>' argument missing"],
    [
      ['audit', 'reconcile', '--database-url', 'postgres://127.0.0.1:9/x', '--schemas', 'audit;drop'],
      'not a plain schema name: "audit;drop"',
    ],
    [['audit', 'reconcile', '--database-url', 'postgres://127.0.0.1:9/x', '--schemas', 'audit,'], 'not a plain schema name: ""'],
    [['audit', 'reconcile', '--database-url', 'postgres://127.0.0.1:9/x', '--grace-seconds', 'soon'], '--grace-seconds must be'],
    [['audit', 'reconcile', '--database-url', 'postgres://127.0.0.1:9/x', '--grace-seconds=-1'], '--grace-seconds must be'],
    [['audit', 'reconcile', '--database-url', 'postgres://127.0.0.1:9/x', 'extra'], 'unexpected argument extra'],
    [['audit', 'verify', '--offline'], '--database-url is required'],
    [['audit', 'verify', '--offline', '--database-url', 'postgres://127.0.0.1:9/x'], 'give --checkpoint <file> and/or --all'],
    [['audit', 'verify', '--offline', '--database-url', 'postgres://127.0.0.1:9/x', '--all', '--schema', 'a b'], '--schema must be'],
    [['audit', 'verify', '--offline', '--database-url', 'postgres://127.0.0.1:9/x', '--all', '--bogus'], "Unknown option '--bogus'"],
    [['bundle', 'apply', 'a.yaml', 'b.yaml'], 'expected 1 argument(s)'],
  ])('%j: exit 2, one line saying what is wrong, then the usage', async (argv, message) => {
    const io = fakeIo({ HOME: home });
    expect(await run(argv, io)).toBe(2);
    const [first, ...rest] = io.err().split('\n');
    expect(first).toMatch(/^custodian: /);
    expect(first).toContain(message);
    expect(rest.join('\n')).toMatch(/^Usage: custodian (audit (reconcile|verify --offline)|bundle) /);
    expect(io.out()).toBe('');
  });

  it.each([
    [['audit', 'reconcile', '--help'], 'Exit codes: 0 nothing missing or stuck, 1 gaps or stuck rows'],
    [['audit', 'verify', '--offline', '--help'], 'Exit codes: 0 every chain verifies, 1 tampering found'],
  ])("%j prints the command's usage and exits 0", async (argv, text) => {
    const io = fakeIo({ HOME: home });
    expect(await run(argv, io)).toBe(0);
    expect(io.err()).toContain(text);
  });

  it('--help prints the usage and exits 0; --version prints the version', async () => {
    const help = fakeIo({ HOME: home });
    expect(await run(['--help'], help)).toBe(0);
    expect(help.out()).toContain('login [--email E]');
    const sub = fakeIo({ HOME: home });
    expect(await run(['api-keys', 'create', '--help'], sub)).toBe(0);
    expect(sub.err()).toContain('Usage: custodian api-keys');
    const version = fakeIo({ HOME: home });
    expect(await run(['--version'], version)).toBe(0);
    expect(version.out()).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it('without a stored login or CUSTODIAN_TOKEN an API command says how to sign in (exit 1)', async () => {
    const io = fakeIo({ HOME: home });
    expect(await run(['users', 'list', '--url', 'http://127.0.0.1:9'], io)).toBe(1);
    expect(io.err()).toContain('unauthenticated');
    expect(io.err()).toContain('custodian login --url http://127.0.0.1:9');
  });

  describe('against a server that answers a problem', () => {
    let server: Server;
    let url: string;
    beforeAll(async () => {
      server = createServer((req, res) => {
        res.writeHead(403, { 'content-type': 'application/problem+json', 'x-request-id': 'req-123' });
        res.end(
          JSON.stringify({
            type: 'x',
            title: 'Forbidden',
            status: 403,
            code: 'forbidden',
            detail: 'Missing capability',
            requestId: 'req-123',
            details: { missing: ['manage_users'] },
          }),
        );
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('prints the problem code, its details and the request id, and exits 1', async () => {
      const io = fakeIo({ HOME: home, CUSTODIAN_TOKEN: 'a-token' });
      expect(await run(['users', 'list', '--url', url], io)).toBe(1);
      expect(io.err()).toContain('error: forbidden (HTTP 403): Missing capability');
      expect(io.err()).toContain('"missing":["manage_users"]');
      expect(io.err()).toContain('request id: req-123');
      expect(io.out()).toBe('');
    });
  });
});
