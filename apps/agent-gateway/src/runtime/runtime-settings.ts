import type { SettingDefinition } from '@custodian/platform';

export const EGRESS_POLICIES = ['all_readable_fields', 'no_sensitive_fields'] as const;
export type EgressPolicy = (typeof EGRESS_POLICIES)[number];

/** The agent runtime's SettingsStore (RUNTIME_SETTINGS, sealed with the master key). */
export const RUNTIME_SETTINGS_STORE = Symbol('RUNTIME_SETTINGS_STORE');

/**
 * The org settings of the agent runtime. No provider is set out of the box: without
 * `model.base_url` the runtime refuses to start a model request, so nothing ever leaves.
 */
export const RUNTIME_SETTINGS: readonly SettingDefinition[] = [
  {
    name: 'model.base_url',
    type: 'url',
    description: 'OpenAI-compatible endpoint, e.g. http://localhost:11434/v1 (Ollama) or http://vllm:8000/v1',
  },
  {
    name: 'model.api_key',
    type: 'secret',
    description: 'Bearer key sent to the model endpoint (encrypted, or env:/file: reference); write-only',
  },
  { name: 'model.name', type: 'string', maxLength: 128, description: 'Default model when the agent profile names none' },
  { name: 'model.timeout_ms', type: 'integer', min: 1000, max: 600_000, default: 60_000, description: 'Time limit of one model request' },
  {
    name: 'model.max_retries',
    type: 'integer',
    min: 0,
    max: 5,
    default: 1,
    description: 'Retries of a model request on 429/5xx/connection errors',
  },
  {
    name: 'egress.policy',
    type: 'enum',
    enum: EGRESS_POLICIES,
    default: 'no_sensitive_fields',
    description: 'What record content may reach the model: every field the user may read, or none of the fields marked sensitive',
  },
  {
    name: 'egress.audit_content',
    type: 'boolean',
    default: false,
    description: 'Also put the request text sent to the model into the audit event',
  },
  // Named providers an agent profile may choose instead of the org default (`provider: "<name>"`).
  {
    name: 'provider.*.base_url',
    type: 'url',
    description: 'OpenAI-compatible endpoint of the named provider (profiles choose it by name)',
  },
  {
    name: 'provider.*.api_key',
    type: 'secret',
    description: 'Bearer key of the named provider (encrypted, or env:/file: reference); write-only',
  },
  { name: 'provider.*.model', type: 'string', maxLength: 128, description: 'Default model of the named provider' },
  {
    name: 'retention.conversation_days',
    type: 'integer',
    min: 1,
    max: 3650,
    default: 90,
    description: 'Conversations untouched this many days are deleted',
  },
];

/** Where one model request goes: the org default provider or a named one. */
export interface ProviderSettings {
  /** The named provider, or undefined for the org default (`model.*`). */
  name?: string;
  baseUrl?: string;
  apiKey?: string;
  model?: string;
}

/** The settings the runtime reads, typed. */
export interface ResolvedRuntimeSettings {
  baseUrl?: string;
  apiKey?: string;
  model?: string;
  timeoutMs: number;
  maxRetries: number;
  egressPolicy: EgressPolicy;
  auditContent: boolean;
  retentionDays: number;
  /** Named providers (`provider.<name>.*`) by name. */
  providers: ReadonlyMap<string, ProviderSettings>;
  /** Settings stored as a reference that could not be read when resolved (SettingsStore.resolveRows). */
  unresolved: ReadonlySet<string>;
}

export function typedSettings(
  values: Map<string, string | number | boolean>,
  unresolved: ReadonlySet<string> = new Set(),
): ResolvedRuntimeSettings {
  const str = (k: string): string | undefined => (typeof values.get(k) === 'string' ? (values.get(k) as string) : undefined);
  return {
    ...(str('model.base_url') ? { baseUrl: str('model.base_url') } : {}),
    ...(str('model.api_key') ? { apiKey: str('model.api_key') } : {}),
    ...(str('model.name') ? { model: str('model.name') } : {}),
    timeoutMs: Number(values.get('model.timeout_ms') ?? 60_000),
    maxRetries: Number(values.get('model.max_retries') ?? 1),
    egressPolicy: (str('egress.policy') as EgressPolicy | undefined) ?? 'no_sensitive_fields',
    auditContent: values.get('egress.audit_content') === true,
    retentionDays: Number(values.get('retention.conversation_days') ?? 90),
    providers: namedProviders(values),
    unresolved,
  };
}

function namedProviders(values: Map<string, string | number | boolean>): Map<string, ProviderSettings> {
  const providers = new Map<string, ProviderSettings>();
  for (const [key, value] of values) {
    const m = /^provider\.([a-z][a-z0-9_]{0,31})\.(base_url|api_key|model)$/.exec(key);
    if (!m || typeof value !== 'string' || value === '') continue;
    const p = providers.get(m[1]!) ?? { name: m[1]! };
    if (m[2] === 'base_url') p.baseUrl = value;
    else if (m[2] === 'api_key') p.apiKey = value;
    else p.model = value;
    providers.set(m[1]!, p);
  }
  return providers;
}

/**
 * The provider a profile's requests go to: its named provider when it names one (nothing of the
 * org default is mixed in: not its endpoint, not its key), else the org default.
 */
export function providerFor(settings: ResolvedRuntimeSettings, providerName: string | null): ProviderSettings {
  if (providerName) return settings.providers.get(providerName) ?? { name: providerName };
  return {
    ...(settings.baseUrl ? { baseUrl: settings.baseUrl } : {}),
    ...(settings.apiKey ? { apiKey: settings.apiKey } : {}),
    ...(settings.model ? { model: settings.model } : {}),
  };
}
