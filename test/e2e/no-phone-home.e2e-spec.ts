import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pollUntil } from '../support/poll';
import { ROOT } from '../support/process';

// "No phone home", proven: the built all-in-one runs in a network namespace that has only
// loopback (`unshare -n`), under `strace -f -e trace=connect`, through its first start (embedded
// PostgreSQL, the demo seeded over its own HTTP API) and a round of API calls made inside the
// namespace. Every connect() it attempted is then checked: only its own HTTP port on loopback and
// the embedded PostgreSQL socket in its data directory are allowed. A namespace without a route
// out would also make a phone-home attempt fail quietly; the trace records the attempt itself.

// First start with the embedded database and the demo under strace is slow on a loaded machine.
jest.setTimeout(180_000);

const PORT = 39_417;
const ADMIN = { email: 'admin@airgap.local', password: 'no-phone-home-password-1' };

interface Connect {
  family: string;
  address: string;
  port?: number;
  line: string;
}

/** connect() calls of an `strace -f -e trace=connect` log. */
export function parseConnects(log: string): Connect[] {
  const out: Connect[] = [];
  for (const line of log.split('\n')) {
    if (!line.includes('connect(')) continue;
    const family = /sa_family=(AF_[A-Z0-9]+)/.exec(line)?.[1] ?? 'unknown';
    const unixPath = /sun_path=(?:@)?"([^"]*)"/.exec(line)?.[1];
    const v4 = /sin_addr=inet_addr\("([^"]+)"\)/.exec(line)?.[1];
    const v6 = /inet_pton\(AF_INET6, "([^"]+)"/.exec(line)?.[1];
    const port = /sin6?_port=htons\((\d+)\)/.exec(line)?.[1];
    out.push({ family, address: unixPath ?? v4 ?? v6 ?? '?', port: port === undefined ? undefined : Number(port), line: line.trim() });
  }
  return out;
}

/** The connects that go anywhere but the allowed local destinations. */
function disallowed(connects: Connect[], dataDir: string): Connect[] {
  return connects.filter((c) => {
    // glibc asks its local name-service cache daemon for user and group names (initdb, PostgreSQL):
    // a host-local socket, not the network.
    if (c.family === 'AF_UNIX') return !(c.address.startsWith(dataDir) || c.address === '/var/run/nscd/socket');
    if (c.family === 'AF_INET') return !(c.address.startsWith('127.') && c.port === PORT);
    if (c.family === 'AF_INET6') return !(c.address === '::1' && c.port === PORT);
    // AF_UNSPEC disconnects a datagram socket; it reaches nothing.
    return c.family !== 'AF_UNSPEC';
  });
}

const tools = ['unshare', 'strace', 'ip', 'nsenter'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);

describe('no phone home', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cust-airgap-'));
  const dataDir = path.join(dir, 'data');
  const trace = path.join(dir, 'connect.trace');
  let child: ChildProcess | undefined;
  let output = '';
  chmodSync(dir, 0o755); // as root, the embedded cluster runs as "postgres", which must traverse it

  afterAll(() => {
    if (child && child.exitCode === null) {
      const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim();
      for (const pid of children.split(/\s+/).filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
      child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs a command inside a network namespace with only loopback, under strace. */
  const isolated = (command: string[], env: Record<string, string>, traceFile: string): ChildProcess =>
    spawn('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec strace -f -qq -e trace=connect -o "$TRACE" "$@"', 'sh', ...command], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: dir, TRACE: traceFile, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });

  it('has the tools it needs (unshare, strace, ip, nsenter; .ci/run installs them)', () => {
    expect(tools).toEqual([]);
    expect(existsSync(path.join(ROOT, 'dist', 'all-in-one', 'main.js'))).toBe(true);
    const probe = spawnSync('unshare', ['-n', 'true']);
    expect({ status: probe.status, stderr: String(probe.stderr) }).toEqual({ status: 0, stderr: '' });
  });

  it('the trace catches an outbound attempt (the check can fail)', async () => {
    const probeTrace = path.join(dir, 'probe.trace');
    const probe = isolated(
      [process.execPath, '-e', "require('node:net').connect(443, '93.184.216.34').on('error', () => process.exit(0))"],
      {},
      probeTrace,
    );
    await new Promise((resolve) => probe.on('close', resolve));
    const bad = disallowed(parseConnects(readFileSync(probeTrace, 'utf8')), dataDir);
    expect(bad.map((c) => `${c.family} ${c.address}:${c.port}`)).toEqual(['AF_INET 93.184.216.34:443']);
  });

  it('the all-in-one, through first start, the demo and API calls, connects only to itself and its embedded database', async () => {
    child = isolated(
      [process.execPath, 'dist/all-in-one/main.js'],
      {
        PORT: String(PORT),
        HOST: '127.0.0.1',
        CUSTODIAN_DATA_DIR: dataDir,
        CUSTODIAN_DEMO: 'true',
        CUSTODIAN_ADMIN_EMAIL: ADMIN.email,
        CUSTODIAN_ADMIN_PASSWORD: ADMIN.password,
        LOG_LEVEL: 'warn',
        CUSTODIAN_SHUTDOWN_GRACE_MS: '2000',
      },
      trace,
    );
    child.stdout?.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr?.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child!.on('close', resolve));
    await pollUntil(() => output.includes('Custodian is running at') || child!.exitCode !== null, {
      timeoutMs: 150_000,
      what: 'the all-in-one to start',
    });
    expect(output).toContain('Custodian is running at');
    // The first start seeded the demo (its banner goes to the credentials file when it can).
    const credentials = readFileSync(path.join(dataDir, 'initial-credentials.txt'), 'utf8');
    expect(credentials).toContain('Demo CRM loaded');
    // The West rep's generated password, from the banner line "   west.rep@…  <password>  …".
    const rep = {
      email: 'west.rep@demo.custodian.local',
      password: new RegExp(String.raw`west\.rep@demo\.custodian\.local\s+(\S+)`).exec(credentials)?.[1],
    };
    expect(rep.password).toEqual(expect.any(String));

    // API calls from inside the namespace (the test itself cannot reach it from outside).
    const driver = `
      const base = 'http://127.0.0.1:${PORT}/api/v1';
      const j = async (method, route, token, body) => {
        const res = await fetch(base + route, { method, headers: { 'content-type': 'application/json', ...(token ? { authorization: 'Bearer ' + token } : {}) }, body: body ? JSON.stringify(body) : undefined });
        return { status: res.status, body: await res.json().catch(() => null) };
      };
      (async () => {
        const login = await j('POST', '/auth/login', undefined, ${JSON.stringify(ADMIN)});
        const admin = login.body.accessToken;
        const out = { login: login.status };
        out.objects = (await j('GET', '/meta/objects', admin)).status;
        out.audit = (await j('GET', '/audit/events?limit=5', admin)).status;
        const repLogin = await j('POST', '/auth/login', undefined, ${JSON.stringify(rep)});
        const t = repLogin.body.accessToken;
        out.repLogin = repLogin.status;
        const accounts = await j('GET', '/data/account', t);
        out.accounts = accounts.status;
        out.accountCount = (accounts.body.items || []).length;
        out.created = (await j('POST', '/data/account', t, { name: 'Offline Ltd', region: 'west', industry: 'Mining' })).status;
        out.approvals = (await j('GET', '/approvals', t)).status;
        console.log(JSON.stringify(out));
      })().catch((e) => { console.log(JSON.stringify({ error: String(e) })); process.exit(1); });`;
    const drive = spawnSync('nsenter', ['-t', String(child.pid), '-n', process.execPath, '-e', driver], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    const result = JSON.parse(drive.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, number>;
    expect(result).toEqual({
      login: 200,
      objects: 200,
      audit: 200,
      repLogin: 200,
      accounts: 200,
      accountCount: expect.any(Number),
      created: 201,
      approvals: 200,
    });
    expect(result.accountCount).toBeGreaterThan(0);

    // SIGTERM to node itself (strace's child): strace given a signal would detach and leave it running.
    const nodePid = Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
    expect(nodePid).toBeGreaterThan(0);
    process.kill(nodePid, 'SIGTERM');
    expect(await exited).toBe(0);

    const connects = parseConnects(readFileSync(trace, 'utf8'));
    // The trace saw the process's own traffic: the database socket and its HTTP port.
    expect(connects.some((c) => c.family === 'AF_UNIX' && c.address.startsWith(dataDir))).toBe(true);
    expect(connects.some((c) => c.family === 'AF_INET' && c.address === '127.0.0.1' && c.port === PORT)).toBe(true);
    expect(disallowed(connects, dataDir).map((c) => c.line)).toEqual([]);
  });
});
