import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '@custodian/platform';
import { startAllInOne } from '../../all-in-one/all-in-one';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { TEST_ADMIN, login } from '../support/host';

// Air-gapped start: CUSTODIAN_BUNDLE names a local YAML or JSON bundle that the all-in-one
// validates before anything starts and applies at every start; an unchanged file changes nothing,
// a changed file applies its difference, an invalid file refuses the start with the exact error.
describe('CUSTODIAN_BUNDLE at start', () => {
  let db: TestDatabase;
  const dir = mkdtempSync(path.join(tmpdir(), 'custodian-bundle-'));
  const masterKey = randomBytes(32).toString('base64');
  const env = (bundle: string): Record<string, string> => ({
    DATABASE_URL: db.url,
    PORT: '0',
    HOST: '127.0.0.1',
    CUSTODIAN_DATA_DIR: path.join(dir, 'data'),
    CUSTODIAN_MASTER_KEY: masterKey,
    CUSTODIAN_ADMIN_EMAIL: TEST_ADMIN.email,
    CUSTODIAN_ADMIN_PASSWORD: TEST_ADMIN.password,
    LOG_LEVEL: 'silent',
    CUSTODIAN_SHUTDOWN_GRACE_MS: '2000',
    CUSTODIAN_BUNDLE: bundle,
  });
  const bundle = (fields: string[]): string =>
    [
      'apiVersion: custodian.dev/v1',
      'kind: Bundle',
      'name: site',
      'roles:',
      '  - name: site_lead',
      'objects:',
      '  - name: asset',
      '    label: Asset',
      '    sharingModel: private',
      '    fields:',
      ...fields.map((f) => `      - { name: ${f}, type: text, maxLength: 100 }`),
      '',
    ].join('\n');
  const fieldsOfAsset = async (url: string): Promise<string[]> => {
    const { accessToken } = await login(url);
    const res = await fetch(`${url}/api/v1/meta/objects/asset`, { headers: { authorization: `Bearer ${accessToken}` } });
    expect(res.status).toBe(200);
    return ((await res.json()) as { fields: Array<{ name: string }> }).fields.map((f) => f.name).sort();
  };
  /** Starts, reads the asset's fields, stops; `changes` are what the start applied (unchanged left out). */
  const startWith = async (file: string): Promise<{ fields: string[]; changes: string[] }> => {
    const host = await startAllInOne(env(file));
    try {
      const changes = (host.bundle?.changes ?? []).filter((c) => c.change !== 'unchanged').map((c) => `${c.change} ${c.kind} ${c.name}`);
      expect(host.bundle?.file).toBe(file);
      return { fields: await fieldsOfAsset(host.url), changes };
    } finally {
      await host.stop();
    }
  };

  beforeAll(async () => {
    db = await createTestDatabase('startup_bundle', { migrated: true });
  });

  afterAll(async () => {
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies the bundle on the first start', async () => {
    const file = path.join(dir, 'custodian.yaml');
    writeFileSync(file, bundle(['serial']));
    const first = await startWith(file);
    expect(first.fields).toEqual(expect.arrayContaining(['serial']));
    expect(first.changes).toEqual(
      expect.arrayContaining([expect.stringMatching(/^create .* site_lead$/), expect.stringMatching(/^create .* asset$/)]),
    );
  });

  it('an unchanged file changes nothing on the next start', async () => {
    const again = await startWith(path.join(dir, 'custodian.yaml'));
    expect(again.fields).toEqual(expect.arrayContaining(['serial']));
    expect(again.changes).toEqual([]);
  });

  it('a changed file (here JSON) applies its difference', async () => {
    const file = path.join(dir, 'custodian.json');
    const { parse } = await import('yaml');
    writeFileSync(file, JSON.stringify(parse(bundle(['serial', 'location']))));
    const changed = await startWith(file);
    expect(changed.fields).toEqual(expect.arrayContaining(['serial', 'location']));
    expect(changed.changes).toEqual([expect.stringMatching(/^update .* asset$/)]);
  });

  it('an invalid file stops the start with the exact error, before anything listens', async () => {
    const file = path.join(dir, 'broken.yaml');
    writeFileSync(file, bundle(['serial']).replace('type: text', 'type: textish'));
    const error = await startAllInOne(env(file)).then(
      async (host) => {
        await host.stop();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      expect.stringMatching(new RegExp(`^CUSTODIAN_BUNDLE=${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: .*/objects/0/fields/0/type`)),
    ]);
  });

  it('a missing file stops the start', async () => {
    const missing = path.join(dir, 'nope.yaml');
    await expect(startAllInOne(env(missing))).rejects.toThrow(`CUSTODIAN_BUNDLE=${missing}: cannot be read`);
  });
});
