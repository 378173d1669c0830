import { itemsOf } from '../api/client';
import {
  Alert,
  Badge,
  Button,
  Code,
  CopyButton,
  Group,
  MultiSelect,
  PasswordInput,
  Select,
  Stack,
  Table,
  Text,
  TextInput,
  Textarea,
  Title,
} from '@mantine/core';
import { useState, type FormEvent, type ReactNode } from 'react';
import { DataTable } from '../components/data-table';
import { Loading, ProblemAlert } from '../components/common';
import { Done, ListState, useList, useSubmit, type Item } from '../components/forms';
import { useLoad } from '../lib/use-load';
import { useSession } from '../session';

const AGENT_SCOPES = ['data:read', 'data:write', 'actions:execute', 'metadata:write'];

/** API keys: create one (its secret is shown once, here, and never again), revoke one. */
export function ApiKeysSection(): ReactNode {
  const { api, me } = useSession();
  const keys = useList('apiKeys');
  const action = useSubmit();
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<string[]>([]);
  const [expiresAt, setExpiresAt] = useState('');
  const [secret, setSecret] = useState<{ name: string; key: string }>();
  const create = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setSecret(undefined);
    await action.run(async () => {
      const res = await api.client.apiKeysCreate({
        body: { name, scopes, ...(expiresAt ? { expiresAt: new Date(expiresAt).toISOString() } : {}) },
      });
      setSecret({ name: res.name ?? name, key: res.key });
      setName('');
      keys.reload();
    });
  };
  return (
    <Stack>
      <form onSubmit={create} aria-label="Create API key">
        <Group align="flex-end" wrap="wrap">
          <TextInput label="Key name" required value={name} onChange={(e) => setName(e.currentTarget.value)} />
          <MultiSelect
            label="Scopes (capabilities, at most yours)"
            data={me.capabilities}
            value={scopes}
            onChange={setScopes}
            miw={260}
            placeholder={scopes.length ? undefined : 'none'}
          />
          <TextInput label="Expires (optional)" type="date" value={expiresAt} onChange={(e) => setExpiresAt(e.currentTarget.value)} />
          <Button type="submit" loading={action.busy}>
            Create API key
          </Button>
        </Group>
      </form>
      <ProblemAlert error={action.error} title="Not changed" />
      {secret ? (
        <Alert color="yellow" title={`API key “${secret.name}” — shown once`} data-testid="api-key-secret">
          <Stack gap="xs">
            <Text size="sm">Store it now: Custodian keeps only a keyed hash and cannot show it again.</Text>
            <Code block tabIndex={0} aria-label="The new API key">
              {secret.key}
            </Code>
            <Group>
              <CopyButton value={secret.key}>
                {({ copied, copy }) => (
                  <Button size="xs" variant="default" onClick={copy}>
                    {copied ? 'Copied' : 'Copy'}
                  </Button>
                )}
              </CopyButton>
              <Button size="xs" variant="default" onClick={() => setSecret(undefined)}>
                I stored it, hide it
              </Button>
            </Group>
          </Stack>
        </Alert>
      ) : null}
      <ListState loaded={keys} what="API keys" />
      {keys.data && keys.data.length > 0 ? (
        <DataTable
          caption="API keys"
          rows={keys.data}
          rowKey={(r) => String(r.id)}
          columns={[
            { id: 'name', header: 'Name' },
            { id: 'prefix', header: 'Prefix' },
            { id: 'scopes', header: 'Scopes', render: (r) => ((r.scopes as string[]) ?? []).join(', ') || 'none' },
            { id: 'expiresAt', header: 'Expires' },
            { id: 'lastUsedAt', header: 'Last used' },
            {
              id: 'revokedAt',
              header: 'Revoked',
              render: (r) =>
                r.revokedAt ? (
                  String(r.revokedAt)
                ) : (
                  <Button
                    size="compact-xs"
                    variant="subtle"
                    color="red"
                    aria-label={`Revoke ${String(r.name)}`}
                    onClick={() =>
                      void action.run(async () => {
                        await api.client.apiKeysRevoke({ id: String(r.id) });
                        keys.reload();
                      })
                    }
                  >
                    Revoke
                  </Button>
                ),
            },
          ]}
        />
      ) : null}
    </Stack>
  );
}

interface Profile {
  id: string;
  name: string;
  model: string | null;
  /** A named provider (`provider.<name>.*` settings) instead of the org default. */
  provider?: string | null;
  systemPrompt: string;
  scopes: string[];
  limits?: Record<string, number>;
}

/** Agent profiles: the built-in agent's model, system prompt and scopes (never more than the user ∩ scopes). */
export function ProfilesSection(): ReactNode {
  const { api } = useSession();
  const profiles = useLoad(async () => itemsOf<Profile>(await api.client.agentProfilesList()), [api]);
  const action = useSubmit();
  const empty = { id: '', name: '', model: '', provider: '', systemPrompt: '', scopes: ['data:read'] };
  const [form, setForm] = useState(empty);
  const [done, setDone] = useState<string>();
  const save = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setDone(undefined);
    const body = {
      name: form.name,
      model: form.model || null,
      provider: form.provider || null,
      systemPrompt: form.systemPrompt,
      scopes: form.scopes,
    };
    await action.run(async () => {
      if (form.id) await api.client.agentProfilesReplace({ id: form.id, body });
      else await api.client.agentProfilesCreate({ body });
      setDone(form.id ? `Profile ${form.name} saved.` : `Profile ${form.name} created.`);
      setForm(empty);
      profiles.reload();
    });
  };
  return (
    <Stack>
      <ListState loaded={profiles} what="Agent profiles" />
      <ProblemAlert error={action.error} title="Not changed" />
      <Done>{done}</Done>
      {profiles.data && profiles.data.length > 0 ? (
        <DataTable
          caption="Agent profiles"
          rows={profiles.data as unknown as Item[]}
          rowKey={(r) => String(r.id)}
          columns={[
            { id: 'name', header: 'Name' },
            { id: 'model', header: 'Model', render: (r) => String(r.model ?? 'org default') },
            { id: 'provider', header: 'Provider', render: (r) => String(r.provider ?? 'org default') },
            { id: 'scopes', header: 'Scopes', render: (r) => ((r.scopes as string[]) ?? []).join(', ') },
            {
              id: 'edit',
              header: 'Actions',
              render: (r) => (
                <Group gap={4}>
                  <Button
                    size="compact-xs"
                    variant="subtle"
                    aria-label={`Edit ${String(r.name)}`}
                    onClick={() =>
                      setForm({
                        id: String(r.id),
                        name: String(r.name),
                        model: String(r.model ?? ''),
                        provider: String(r.provider ?? ''),
                        systemPrompt: String(r.systemPrompt ?? ''),
                        scopes: (r.scopes as string[]) ?? [],
                      })
                    }
                  >
                    Edit
                  </Button>
                  <Button
                    size="compact-xs"
                    variant="subtle"
                    color="red"
                    aria-label={`Delete ${String(r.name)}`}
                    onClick={() =>
                      void action.run(async () => {
                        await api.client.agentProfilesRemove({ id: String(r.id) });
                        profiles.reload();
                      })
                    }
                  >
                    Delete
                  </Button>
                </Group>
              ),
            },
          ]}
        />
      ) : null}
      <form onSubmit={save} aria-label={form.id ? 'Edit agent profile' : 'Create agent profile'}>
        <Stack gap="xs" maw={640}>
          <Title order={2} size="h4">
            {form.id ? `Edit ${form.name}` : 'New agent profile'}
          </Title>
          <TextInput label="Profile name" required value={form.name} onChange={(e) => setForm({ ...form, name: e.currentTarget.value })} />
          <TextInput
            label="Model (empty: the org default)"
            value={form.model}
            onChange={(e) => setForm({ ...form, model: e.currentTarget.value })}
          />
          <TextInput
            label="Provider (empty: the org default; a name set up as provider.<name>.* in model settings)"
            value={form.provider}
            onChange={(e) => setForm({ ...form, provider: e.currentTarget.value })}
          />
          <Textarea
            label="System prompt"
            autosize
            minRows={3}
            value={form.systemPrompt}
            onChange={(e) => setForm({ ...form, systemPrompt: e.currentTarget.value })}
          />
          <MultiSelect label="Scopes" data={AGENT_SCOPES} value={form.scopes} onChange={(scopes) => setForm({ ...form, scopes })} />
          <Group>
            <Button type="submit" loading={action.busy}>
              {form.id ? 'Save profile' : 'Create profile'}
            </Button>
            {form.id ? (
              <Button variant="default" onClick={() => setForm(empty)}>
                Cancel
              </Button>
            ) : null}
          </Group>
        </Stack>
      </form>
    </Stack>
  );
}

interface Setting {
  name: string;
  type: 'string' | 'url' | 'integer' | 'boolean' | 'enum' | 'secret';
  description: string;
  value?: string | number | boolean | null;
  default?: string | number | boolean;
  secret?: { set: boolean; source: string | null; reference?: string };
}

/**
 * The agent runtime's model settings. A secret is write-only: its input is always empty and the
 * page only ever says "set" or "not set" (the API never answers the value).
 */
export function ModelSettingsSection(): ReactNode {
  const { api } = useSession();
  const settings = useLoad(async () => itemsOf<Setting>(await api.client.runtimeSettingsList()), [api]);
  return (
    <Stack>
      {settings.loading && !settings.data ? <Loading /> : null}
      <ProblemAlert error={settings.error} title="Settings could not be loaded" />
      {settings.data ? (
        <Table withTableBorder aria-label="Model settings">
          <Table.Thead>
            <Table.Tr>
              <Table.Th scope="col">Setting</Table.Th>
              <Table.Th scope="col">Now</Table.Th>
              <Table.Th scope="col">Change</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {settings.data.map((s) => (
              <SettingRow key={s.name} setting={s} onChanged={settings.reload} />
            ))}
          </Table.Tbody>
        </Table>
      ) : null}
    </Stack>
  );
}

function SettingRow({ setting: s, onChanged }: { setting: Setting; onChanged: () => void }): ReactNode {
  const { api } = useSession();
  const action = useSubmit();
  const [value, setValue] = useState(s.type === 'secret' || s.value == null ? '' : String(s.value));
  const label = `New value of ${s.name}`;
  const put = (): void =>
    void action.run(async () => {
      const typed =
        s.type === 'secret' ? { value } : s.type === 'integer' ? Number(value) : s.type === 'boolean' ? value === 'true' : value;
      await api.client.runtimeSettingsPut({ name: s.name, body: { value: typed } });
      if (s.type === 'secret') setValue('');
      onChanged();
    });
  const clear = (): void =>
    void action.run(async () => {
      await api.client.runtimeSettingsClear({ name: s.name });
      onChanged();
    });
  return (
    <Table.Tr>
      <Table.Th scope="row">
        <Text fw={600} size="sm">
          {s.name}
        </Text>
        <Text size="xs">{s.description}</Text>
      </Table.Th>
      <Table.Td data-setting={s.name}>
        {s.type === 'secret' ? (
          <Badge color="dark" variant="outline">
            {s.secret?.set ? `set (${s.secret.source ?? 'stored'})` : 'not set'}
          </Badge>
        ) : (
          <Text size="sm">
            {s.value != null ? String(s.value) : s.default !== undefined ? `${String(s.default)} (default)` : 'not set'}
          </Text>
        )}
      </Table.Td>
      <Table.Td>
        <Group gap="xs" align="flex-end" wrap="nowrap">
          {s.type === 'secret' ? (
            <PasswordInput
              aria-label={label}
              autoComplete="new-password"
              placeholder="new secret"
              value={value}
              onChange={(e) => setValue(e.currentTarget.value)}
            />
          ) : s.type === 'boolean' ? (
            <Select aria-label={label} data={['true', 'false']} value={value || null} onChange={(v) => setValue(v ?? '')} />
          ) : (
            <TextInput aria-label={label} value={value} onChange={(e) => setValue(e.currentTarget.value)} />
          )}
          <Button size="xs" onClick={put} disabled={!value} loading={action.busy} aria-label={`Save ${s.name}`}>
            Save
          </Button>
          <Button size="xs" variant="default" onClick={clear} aria-label={`Clear ${s.name}`}>
            Clear
          </Button>
        </Group>
        <ProblemAlert error={action.error} title={`${s.name} not changed`} />
      </Table.Td>
    </Table.Tr>
  );
}
