import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

// The systemd units are parsed and their hardening asserted; where systemd-analyze exists they
// are also verified by systemd itself (unknown keys, bad values, missing binaries) and scored by
// `systemd-analyze security --offline`.

const root = path.resolve(__dirname, '..', '..');
const dir = path.join(root, 'deploy', 'systemd');
const SERVICES = ['agent-gateway', 'approvals', 'audit', 'identity', 'objects'];
const units = readdirSync(dir).filter((f) => f.endsWith('.service'));

/** Directives of the [Service] section: name → every value given (in order). */
function serviceSection(file: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of readFileSync(path.join(dir, file), 'utf8').split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1];
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) throw new Error(`${file}: not a directive: ${line}`);
    if (section !== 'Service') continue;
    const key = line.slice(0, eq);
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
const haveAnalyze = analyze.status === 0;

describe('deploy/systemd', () => {
  it('has a unit for the all-in-one, one per service and the migration template', () => {
    expect(units.sort()).toEqual(
      ['custodian-migrate@.service', 'custodian.service', ...SERVICES.map((s) => `custodian-${s}.service`)].sort(),
    );
  });

  it.each(units)('%s is hardened', (file) => {
    const s = serviceSection(file);
    const one = (k: string): string | undefined => s.get(k)?.at(-1);
    expect({
      file,
      NoNewPrivileges: one('NoNewPrivileges'),
      ProtectSystem: one('ProtectSystem'),
      PrivateTmp: one('PrivateTmp'),
      DynamicUser: one('DynamicUser'),
      ProtectHome: one('ProtectHome'),
      CapabilityBoundingSet: one('CapabilityBoundingSet'),
      User: one('User'),
    }).toEqual({
      file,
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      PrivateTmp: 'yes',
      DynamicUser: 'yes',
      ProtectHome: 'yes',
      CapabilityBoundingSet: '',
      User: undefined,
    });
    // Writable: the service's own data directory only.
    const state = one('StateDirectory');
    expect(s.get('ReadWritePaths') ?? []).toEqual(state ? [`%S/${state}`] : []);
    expect(s.get('Environment')?.some((e) => /MASTER_KEY=/.test(e))).toBe(false);
  });

  it.each(units.filter((u) => !u.includes('@')))('%s starts the right entry point with the master key as a credential', (file) => {
    const s = serviceSection(file);
    const svc = /^custodian-(.+)\.service$/.exec(file)?.[1];
    const entry = svc ? `dist/apps/${svc}/main.js` : 'dist/all-in-one/main.js';
    expect(s.get('ExecStart')).toEqual([`/usr/bin/node ${entry}`]);
    expect(existsSync(path.join(root, svc ? `apps/${svc}/src/main.ts` : 'all-in-one/main.ts'))).toBe(true);
    expect(s.get('LoadCredential')).toEqual(['master.key:/etc/custodian/master.key']);
    expect(s.get('Environment')).toEqual(
      expect.arrayContaining(['CUSTODIAN_MASTER_KEY_FILE=%d/master.key', `CUSTODIAN_DATA_DIR=%S/${s.get('StateDirectory')?.[0]}`]),
    );
  });

  (haveAnalyze ? describe : describe.skip)('systemd-analyze', () => {
    // The units name /usr/bin/node; verify checks that the binary exists, so the copies under test
    // point at the node running this test.
    const tmp = mkdtempSync(path.join(tmpdir(), 'custodian-units-'));
    afterAll(() => rmSync(tmp, { recursive: true, force: true }));
    for (const f of units) {
      copyFileSync(path.join(dir, f), path.join(tmp, f));
      writeFileSync(path.join(tmp, f), readFileSync(path.join(tmp, f), 'utf8').replace(/\/usr\/bin\/node/g, process.execPath));
    }
    copyFileSync(path.join(tmp, 'custodian-migrate@.service'), path.join(tmp, 'custodian-migrate@objects.service'));
    const targets = units.map((u) => (u.includes('@') ? 'custodian-migrate@objects.service' : u));

    it.each(targets)('verify %s: no error and no warning', (unit) => {
      const r = spawnSync('systemd-analyze', ['verify', `./${unit}`], { cwd: tmp, encoding: 'utf8' });
      expect({ status: r.status, stderr: r.stderr.trim() }).toEqual({ status: 0, stderr: '' });
    });

    it('verify reports what it should (a misspelt key, a missing binary)', () => {
      const bad = readFileSync(path.join(tmp, 'custodian.service'), 'utf8').replace('NoNewPrivileges=yes', 'NoNewPrivilege=yes');
      writeFileSync(path.join(tmp, 'bad.service'), bad);
      expect(spawnSync('systemd-analyze', ['verify', './bad.service'], { cwd: tmp, encoding: 'utf8' }).stderr).toContain(
        "Unknown key 'NoNewPrivilege'",
      );
      writeFileSync(path.join(tmp, 'bad.service'), bad.replace(process.execPath, '/nonexistent/node'));
      expect(spawnSync('systemd-analyze', ['verify', './bad.service'], { cwd: tmp, encoding: 'utf8' }).status).not.toBe(0);
    });

    it.each(targets.filter((u) => !u.includes('@')))('security exposure of %s is low', (unit) => {
      const r = spawnSync('systemd-analyze', ['security', '--offline=yes', `./${unit}`], { cwd: tmp, encoding: 'utf8' });
      const score = /Overall exposure level for .*: ([0-9.]+)/.exec(r.stdout)?.[1];
      expect(Number(score)).toBeLessThanOrEqual(2);
    });
  });
});
