import { randomBytes } from 'node:crypto';
import { SettingsCipher } from './settings-cipher';
import { SettingsStore, type SettingDefinition, type SettingRow } from './settings-store';

const ORG = '0190f0f0-0000-7000-8000-000000000001';
const DEFINITIONS: SettingDefinition[] = [
  { name: 'model.base_url', type: 'url', description: 'default endpoint' },
  { name: 'model.timeout_ms', type: 'integer', min: 1000, max: 600_000, default: 60_000, description: 'time limit' },
  { name: 'provider.*.base_url', type: 'url', description: 'named endpoint' },
  { name: 'provider.*.api_key', type: 'secret', description: 'named key' },
];

describe('SettingsStore templated names (provider.*.x)', () => {
  const cipher = new SettingsCipher(randomBytes(32));
  const store = new SettingsStore(DEFINITIONS, cipher, { envPrefix: 'CUSTODIAN_SECRET_', fileDirs: ['/run/secrets'] });

  it('accepts a name that fills the template with one segment of a-z, 0-9 and _, and nothing else', () => {
    expect(store.definition('provider.local.base_url')).toMatchObject({ name: 'provider.local.base_url', type: 'url' });
    expect(store.definition('provider.gpu_2.api_key')).toMatchObject({ type: 'secret' });
    for (const name of [
      'provider.*.base_url',
      'provider..base_url',
      'provider.Local.base_url',
      'provider.a.b.base_url',
      'provider.1x.base_url',
      'provider.local.other',
      `provider.${'x'.repeat(33)}.base_url`,
    ])
      expect(store.definition(name)).toBeUndefined();
    expect(store.definition('model.base_url')).toMatchObject({ type: 'url' });
  });

  it('resolves rows read elsewhere: fixed settings or their defaults, the templated ones set, sealed secrets opened', async () => {
    const rows: SettingRow[] = [
      {
        name: 'provider.local.base_url',
        kind: 'value',
        value: 'http://127.0.0.1:11434/v1',
        sealed: null,
        reference: null,
        version: 1,
        updated_at: new Date().toISOString(),
      },
      {
        name: 'provider.local.api_key',
        kind: 'sealed',
        value: null,
        sealed: cipher.seal(ORG, 'provider.local.api_key', 'sk-local'),
        reference: null,
        version: 1,
        updated_at: new Date().toISOString(),
      },
      // Not in the catalog (a row left by an older version): ignored.
      { name: 'provider.local.unknown', kind: 'value', value: 'x', sealed: null, reference: null, version: 1, updated_at: new Date() },
    ];
    const resolved = await store.resolveRows(ORG, rows);
    expect(Object.fromEntries(resolved)).toEqual({
      'model.timeout_ms': 60_000,
      'provider.local.base_url': 'http://127.0.0.1:11434/v1',
      'provider.local.api_key': 'sk-local',
    });
  });
  it('names a reference that cannot be read now, and leaves it out of the values', async () => {
    const row = (name: string, reference: string): SettingRow => ({
      name,
      kind: 'reference',
      value: null,
      sealed: null,
      reference,
      version: 1,
      updated_at: new Date().toISOString(),
    });
    process.env.CUSTODIAN_SECRET_SPEC_PRESENT = 'sk-present';
    try {
      const unresolved = new Set<string>();
      const resolved = await store.resolveRows(
        ORG,
        [row('provider.a.api_key', 'env:CUSTODIAN_SECRET_SPEC_PRESENT'), row('provider.b.api_key', 'env:CUSTODIAN_SECRET_SPEC_MISSING')],
        unresolved,
      );
      expect(resolved.get('provider.a.api_key')).toBe('sk-present');
      expect(resolved.has('provider.b.api_key')).toBe(false);
      expect([...unresolved]).toEqual(['provider.b.api_key']);
    } finally {
      delete process.env.CUSTODIAN_SECRET_SPEC_PRESENT;
    }
  });
});
