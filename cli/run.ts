import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { Client } from 'pg';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
// Commands that are inherently local run the services' own code (never over the API); loaded only
// by those commands, so the API commands start without the server's modules.
import type * as RotateSettingsKey from '../apps/agent-gateway/src/runtime/rotate-settings-key';
import type * as Reconcile from '../apps/audit/src/reconcile/reconcile';
import type * as VerifyOffline from './audit-verify-offline';
import type * as Doctor from './doctor';
import { CustodianApiError, CustodianClient } from '../packages/client/src';
import { loadCredentials, removeCredentials, saveCredentials, type StoredCredentials } from './credentials';
import { exportBundle } from './bundle-export';
import { printJson, readSecret, UsageError, type CliIo } from './io';
import { LineProgress } from './progress';
import { ProgressBar } from './progress-bar';

export const VERSION = '0.1.0';

export const USAGE = `custodian — the command line of a Custodian installation (docs/cli.md)

Usage: custodian <command> [options]

  login [--email E] [--org ID]            sign in; the password is read from stdin; stores a token
  logout                                  ends the session and forgets the stored token
  whoami                                  the signed-in principal
  users list | show <id> | delete <id> | create --email E --display-name N [--role ID]   (create: password from stdin)
  users update <id> [--display-name N] [--role ID|none] [--active true|false]
  roles list | show <id> | delete <id> | create --name N [--parent ID] | update <id> [--name N] [--parent ID|none]
  groups list | show <id> | delete <id> | create --name N [--description D] | members <id>
  groups add-member <id> --user ID | remove-member <id> --user ID
  permission-sets list | show <id> | delete <id> | create --file F.(json|yaml) | assignments <id>
  permission-sets assign <id> (--user ID | --group ID) | unassign <id> (--user ID | --group ID | --assignment ID)
  api-keys list | create --name N [--scope S]... [--expires-at ISO] | revoke <id>
  approvals list [--status S] [--waiting-for-me] [--mine] | approve <id> [--comment C] | reject <id> --reason R
  audit verify [--offline --database-url URL [--checkpoint F] [--public-key F] [--schema S] [--all]]
  audit export [--output F]               NDJSON of the org's events (progress on stderr)
  audit archive --before ISO
  audit reconcile --database-url URL [--schemas a,b] [--grace-seconds N]   (local, A9)
  settings list | set <name> (value from stdin) | clear <name>
  settings rotate-key                     (local) re-seal encrypted settings: CUSTODIAN_MASTER_KEY_PREVIOUS -> CUSTODIAN_MASTER_KEY
  bundle apply <file> [--dry-run] [--progress] | diff <file> | export [--output F] [--name N] [--progress]
  doctor                                  config, database, bus, clock skew vs the server, key material

Common options: --url URL (default: CUSTODIAN_URL, the stored login, http://127.0.0.1:3000), --help, --version.
Credentials: CUSTODIAN_TOKEN (an access token or API key), else the one \`login\` stored in
~/.config/custodian/credentials (mode 0600). Secrets are read from stdin, never from arguments.
Progress of long work is on stderr, never stdout (bundle: on a terminal, or with --progress).
Exit codes: 0 done, 1 the API or a check refused (problem code and request id on stderr), 2 bad arguments.`;

type Options = NonNullable<ParseArgsConfig['options']>;
const COMMON: Options = { url: { type: 'string' }, help: { type: 'boolean', short: 'h' } };

/** node:util parseArgs with the common options; unknown options and missing values are usage errors. */
export function parse(
  args: string[],
  options: Options,
  usage: string,
  positionals = 0,
): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...COMMON, ...options }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message, usage);
  }
  if (parsed.values.help) throw new UsageError('', usage);
  if (parsed.positionals.length !== positionals)
    throw new UsageError(positionals ? `expected ${positionals} argument(s)` : `unexpected argument ${parsed.positionals[0]}`, usage);
  return { values: parsed.values as Record<string, string | boolean | string[] | undefined>, positionals: parsed.positionals };
}

function required(values: Record<string, unknown>, name: string, usage: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} is required`, usage);
  return value;
}

/** The server and credential of a call: --url, CUSTODIAN_URL / CUSTODIAN_TOKEN, then the stored login. */
async function connect(io: CliIo, url: unknown, needToken = true): Promise<CustodianClient> {
  const stored = await loadCredentials(io.env);
  const base = (typeof url === 'string' && url) || io.env.CUSTODIAN_URL || stored?.url || 'http://127.0.0.1:3000';
  const anonymous = new CustodianClient({ baseUrl: base, headers: { 'user-agent': `custodian-cli/${VERSION}` } });
  if (io.env.CUSTODIAN_TOKEN) return anonymous.withToken(io.env.CUSTODIAN_TOKEN);
  if (stored && stored.url === base) return anonymous.withToken(await freshToken(io, anonymous, stored));
  if (needToken)
    throw new CustodianApiError(401, 'unauthenticated', undefined, `not signed in to ${base}: run \`custodian login --url ${base}\``);
  return anonymous;
}

/** The stored access token, refreshed (and stored again) when it is about to expire. */
async function freshToken(io: CliIo, api: CustodianClient, stored: StoredCredentials): Promise<string> {
  if (!stored.refreshToken || !stored.expiresAt || stored.expiresAt - Date.now() > 30_000) return stored.accessToken;
  const t = await api.authRefresh({ body: { refreshToken: stored.refreshToken } });
  await saveCredentials(io.env, {
    ...stored,
    accessToken: t.accessToken,
    refreshToken: t.refreshToken,
    expiresAt: Date.now() + t.expiresIn * 1000,
  });
  return t.accessToken;
}

const LIST: Options = { limit: { type: 'string' }, cursor: { type: 'string' } };
/** `--cursor` is the `nextCursor` of the previous page (ADR 0018). */
const page = (v: Record<string, unknown>) => ({
  query: { ...(typeof v.limit === 'string' ? { limit: v.limit } : {}), ...(typeof v.cursor === 'string' ? { cursor: v.cursor } : {}) },
});

async function login(io: CliIo, args: string[]): Promise<number> {
  const usage = 'Usage: custodian login [--url URL] [--email E] [--org ID]   (password from stdin)';
  const { values } = parse(args, { email: { type: 'string' }, org: { type: 'string' } }, usage);
  const base = (values.url as string | undefined) || io.env.CUSTODIAN_URL || 'http://127.0.0.1:3000';
  const email = (values.email as string | undefined) || io.env.CUSTODIAN_EMAIL;
  if (!email) throw new UsageError('--email is required', usage);
  const password = await readSecret(io, `Password for ${email}: `);
  if (!password) throw new UsageError('no password on stdin', usage);
  const api = new CustodianClient({ baseUrl: base, headers: { 'user-agent': `custodian-cli/${VERSION}` } });
  const t = await api.authLogin({ body: { email, password, ...(values.org ? { orgId: values.org as string } : {}) } });
  const file = await saveCredentials(io.env, {
    url: base,
    accessToken: t.accessToken,
    refreshToken: t.refreshToken,
    orgId: t.orgId,
    email,
    expiresAt: Date.now() + t.expiresIn * 1000,
  });
  io.stderr.write(`signed in to ${base} as ${email} (org ${t.orgId}); token stored in ${file}\n`);
  return 0;
}

const DIRECTORY_USAGE: Record<string, string> = {
  users: `Usage: custodian users list [--limit N] [--cursor C] | show <id> | delete <id>
       custodian users create --email E --display-name N [--role ID]   (password from stdin)
       custodian users update <id> [--display-name N] [--role ID|none] [--active true|false]`,
  roles: `Usage: custodian roles list [--limit N] [--cursor C] | show <id> | delete <id>
       custodian roles create --name N [--parent ID]
       custodian roles update <id> [--name N] [--parent ID|none]`,
  groups: `Usage: custodian groups list [--limit N] [--cursor C] | show <id> | delete <id>
       custodian groups create --name N [--description D]
       custodian groups members <id> [--limit N] [--cursor C]
       custodian groups add-member <id> --user ID | remove-member <id> --user ID`,
  'permission-sets': `Usage: custodian permission-sets list [--limit N] [--cursor C] | show <id> | delete <id>
       custodian permission-sets create --file F.(json|yaml)
       custodian permission-sets assignments <id> [--limit N] [--cursor C]
       custodian permission-sets assign <id> (--user ID | --group ID)
       custodian permission-sets unassign <id> (--user ID | --group ID | --assignment ID)`,
};

/** Exactly one of the named options (`--user U` or `--group G`, …): its name and value. */
function oneOf(values: Record<string, unknown>, names: string[], usage: string): [string, string] {
  const given = names.filter((n) => typeof values[n] === 'string' && values[n] !== '');
  if (given.length !== 1) throw new UsageError(`give exactly one of ${names.map((n) => `--${n}`).join(', ')}`, usage);
  return [given[0], values[given[0]] as string];
}

/** `--role none` / `--parent none` clear the reference; any other value is an id. */
const idOrNone = (value: unknown): string | null | undefined => (typeof value === 'string' ? (value === 'none' ? null : value) : undefined);

async function directory(io: CliIo, noun: string, args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  const usage = DIRECTORY_USAGE[noun];
  if (verb === 'list') {
    const { values } = parse(rest, LIST, usage);
    const api = await connect(io, values.url);
    const q = page(values);
    const result =
      noun === 'users'
        ? await api.usersList(q)
        : noun === 'roles'
          ? await api.rolesList(q)
          : noun === 'groups'
            ? await api.groupsList(q)
            : await api.permissionSetsList(q);
    printJson(io, result);
    return 0;
  }
  if (verb === 'show') {
    const { values, positionals } = parse(rest, {}, usage, 1);
    const api = await connect(io, values.url);
    const id = positionals[0];
    const result =
      noun === 'users'
        ? await api.usersGet({ id })
        : noun === 'roles'
          ? await api.rolesGet({ id })
          : noun === 'groups'
            ? await api.groupsGet({ id })
            : await api.permissionSetsGet({ id });
    printJson(io, result);
    return 0;
  }
  if (verb === 'delete') {
    const { values, positionals } = parse(rest, {}, usage, 1);
    const api = await connect(io, values.url);
    const id = positionals[0];
    if (noun === 'users') await api.usersRemove({ id });
    else if (noun === 'roles') await api.rolesRemove({ id });
    else if (noun === 'groups') await api.groupsRemove({ id });
    else await api.permissionSetsRemove({ id });
    io.stderr.write(noun === 'users' ? `removed ${id} from the organization\n` : `deleted ${id}\n`);
    return 0;
  }
  if (verb === 'create') {
    if (noun === 'users') {
      const { values } = parse(rest, { email: { type: 'string' }, 'display-name': { type: 'string' }, role: { type: 'string' } }, usage);
      const email = required(values, 'email', usage);
      const displayName = required(values, 'display-name', usage);
      const api = await connect(io, values.url);
      const password = await readSecret(io, `Password for ${email}: `);
      if (!password) throw new UsageError('no password on stdin', usage);
      printJson(
        io,
        await api.usersCreate({ body: { email, displayName, password, ...(values.role ? { roleId: values.role as string } : {}) } }),
      );
      return 0;
    }
    if (noun === 'roles') {
      const { values } = parse(rest, { name: { type: 'string' }, parent: { type: 'string' } }, usage);
      const name = required(values, 'name', usage);
      const api = await connect(io, values.url);
      printJson(io, await api.rolesCreate({ body: { name, ...(values.parent ? { parentId: values.parent as string } : {}) } }));
      return 0;
    }
    if (noun === 'groups') {
      const { values } = parse(rest, { name: { type: 'string' }, description: { type: 'string' } }, usage);
      const name = required(values, 'name', usage);
      const api = await connect(io, values.url);
      printJson(
        io,
        await api.groupsCreate({ body: { name, ...(values.description ? { description: values.description as string } : {}) } }),
      );
      return 0;
    }
    const { values } = parse(rest, { file: { type: 'string' } }, usage);
    const body = parseYaml(await readFile(required(values, 'file', usage), 'utf8')) as Parameters<
      CustodianClient['permissionSetsCreate']
    >[0]['body'];
    const api = await connect(io, values.url);
    printJson(io, await api.permissionSetsCreate({ body }));
    return 0;
  }
  if (verb === 'update' && noun === 'users') {
    const { values, positionals } = parse(
      rest,
      { 'display-name': { type: 'string' }, role: { type: 'string' }, active: { type: 'string' } },
      usage,
      1,
    );
    if (values.active !== undefined && values.active !== 'true' && values.active !== 'false')
      throw new UsageError('--active must be true or false', usage);
    const body = {
      ...(values['display-name'] !== undefined ? { displayName: values['display-name'] as string } : {}),
      ...(values.role !== undefined ? { roleId: idOrNone(values.role) } : {}),
      ...(values.active !== undefined ? { active: values.active === 'true' } : {}),
    };
    if (Object.keys(body).length === 0) throw new UsageError('nothing to change: give --display-name, --role or --active', usage);
    printJson(io, await (await connect(io, values.url)).usersUpdate({ id: positionals[0], body }));
    return 0;
  }
  if (verb === 'update' && noun === 'roles') {
    const { values, positionals } = parse(rest, { name: { type: 'string' }, parent: { type: 'string' } }, usage, 1);
    const body = {
      ...(values.name !== undefined ? { name: values.name as string } : {}),
      ...(values.parent !== undefined ? { parentId: idOrNone(values.parent) } : {}),
    };
    if (Object.keys(body).length === 0) throw new UsageError('nothing to change: give --name or --parent', usage);
    printJson(io, await (await connect(io, values.url)).rolesUpdate({ id: positionals[0], body }));
    return 0;
  }
  if (noun === 'groups' && verb === 'members') {
    const { values, positionals } = parse(rest, LIST, usage, 1);
    printJson(io, await (await connect(io, values.url)).groupsMembers({ id: positionals[0], ...page(values) }));
    return 0;
  }
  if (noun === 'groups' && (verb === 'add-member' || verb === 'remove-member')) {
    const { values, positionals } = parse(rest, { user: { type: 'string' } }, usage, 1);
    const userId = required(values, 'user', usage);
    const api = await connect(io, values.url);
    if (verb === 'add-member') printJson(io, await api.groupsAddMember({ id: positionals[0], body: { userId } }));
    else {
      await api.groupsRemoveMember({ id: positionals[0], userId });
      io.stderr.write(`removed ${userId} from group ${positionals[0]}\n`);
    }
    return 0;
  }
  if (noun === 'permission-sets' && verb === 'assignments') {
    const { values, positionals } = parse(rest, LIST, usage, 1);
    printJson(io, await (await connect(io, values.url)).permissionSetsAssignments({ id: positionals[0], ...page(values) }));
    return 0;
  }
  if (noun === 'permission-sets' && verb === 'assign') {
    const { values, positionals } = parse(rest, { user: { type: 'string' }, group: { type: 'string' } }, usage, 1);
    const [kind, target] = oneOf(values, ['user', 'group'], usage);
    const api = await connect(io, values.url);
    printJson(io, await api.permissionSetsAssign({ id: positionals[0], body: kind === 'user' ? { userId: target } : { groupId: target } }));
    return 0;
  }
  if (noun === 'permission-sets' && verb === 'unassign') {
    const { values, positionals } = parse(
      rest,
      { user: { type: 'string' }, group: { type: 'string' }, assignment: { type: 'string' } },
      usage,
      1,
    );
    const [kind, target] = oneOf(values, ['user', 'group', 'assignment'], usage);
    const setId = positionals[0];
    const api = await connect(io, values.url);
    let assignmentId = target;
    if (kind !== 'assignment') {
      // The route deletes by assignment id: find the user's or group's assignment of this set.
      let cursor: string | undefined;
      let found: string | undefined;
      do {
        const p = await api.permissionSetsAssignments({ id: setId, query: { limit: '200', ...(cursor ? { cursor } : {}) } });
        found = p.items.find((a) => (kind === 'user' ? a.userId : a.groupId) === target)?.id;
        cursor = p.nextCursor ?? undefined;
      } while (!found && cursor);
      if (!found) throw new CustodianApiError(404, 'not_found', undefined, `permission set ${setId} is not assigned to ${kind} ${target}`);
      assignmentId = found;
    }
    await api.permissionSetsUnassign({ id: setId, assignmentId });
    io.stderr.write(`removed assignment ${assignmentId}\n`);
    return 0;
  }
  throw new UsageError(verb ? `unknown ${noun} command ${verb}` : `${noun} needs a command`, usage);
}

async function apiKeys(io: CliIo, args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  const usage = 'Usage: custodian api-keys list | create --name N [--scope S]... [--expires-at ISO] | revoke <id>';
  if (verb === 'list') {
    const { values } = parse(rest, LIST, usage);
    printJson(io, await (await connect(io, values.url)).apiKeysList(page(values)));
    return 0;
  }
  if (verb === 'create') {
    const { values } = parse(
      rest,
      { name: { type: 'string' }, scope: { type: 'string', multiple: true }, 'expires-at': { type: 'string' } },
      usage,
    );
    const name = required(values, 'name', usage);
    const api = await connect(io, values.url);
    const created = await api.apiKeysCreate({
      body: {
        name,
        ...(values.scope ? { scopes: values.scope as string[] } : {}),
        ...(values['expires-at'] ? { expiresAt: values['expires-at'] as string } : {}),
      },
    });
    printJson(io, created);
    io.stderr.write('The key is shown once: store it now.\n');
    return 0;
  }
  if (verb === 'revoke') {
    const { values, positionals } = parse(rest, {}, usage, 1);
    await (await connect(io, values.url)).apiKeysRevoke({ id: positionals[0] });
    io.stderr.write(`revoked ${positionals[0]}\n`);
    return 0;
  }
  throw new UsageError(verb ? `unknown api-keys command ${verb}` : 'api-keys needs a command', usage);
}

async function approvals(io: CliIo, args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  const usage =
    'Usage: custodian approvals list [--status S] [--waiting-for-me] [--mine] [--limit N] | approve <id> [--comment C] | reject <id> --reason R';
  if (verb === 'list') {
    const { values } = parse(
      rest,
      {
        status: { type: 'string' },
        'waiting-for-me': { type: 'boolean' },
        mine: { type: 'boolean' },
        limit: { type: 'string' },
        cursor: { type: 'string' },
      },
      usage,
    );
    const api = await connect(io, values.url);
    const query: Record<string, string> = {};
    if (values.status) query.status = values.status as string;
    if (values['waiting-for-me']) query.waitingForMe = 'true';
    if (values.mine) query.mine = 'true';
    if (values.limit) query.limit = values.limit as string;
    if (values.cursor) query.cursor = values.cursor as string;
    printJson(io, await api.pendingActionsList({ query: query as never }));
    return 0;
  }
  if (verb === 'approve') {
    const { values, positionals } = parse(rest, { comment: { type: 'string' }, revision: { type: 'string' } }, usage, 1);
    const api = await connect(io, values.url);
    const body = {
      ...(values.comment ? { comment: values.comment as string } : {}),
      ...(values.revision ? { revision: Number(values.revision) } : {}),
    };
    printJson(io, await api.pendingActionsApprove({ id: positionals[0], body }));
    return 0;
  }
  if (verb === 'reject') {
    const { values, positionals } = parse(rest, { reason: { type: 'string' }, revision: { type: 'string' } }, usage, 1);
    const reason = required(values, 'reason', usage);
    const api = await connect(io, values.url);
    printJson(
      io,
      await api.pendingActionsReject({
        id: positionals[0],
        body: { reason, ...(values.revision ? { revision: Number(values.revision) } : {}) },
      }),
    );
    return 0;
  }
  throw new UsageError(verb ? `unknown approvals command ${verb}` : 'approvals needs a command', usage);
}

/** A schema name spliced into SQL by the local audit commands: plain identifiers only. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]*$/;

const OFFLINE_VERIFY: Options = {
  offline: { type: 'boolean' },
  'database-url': { type: 'string' },
  checkpoint: { type: 'string' },
  'public-key': { type: 'string' },
  schema: { type: 'string' },
  all: { type: 'boolean' },
};

export const VERIFY_OFFLINE_USAGE = `Usage: custodian audit verify --offline --database-url URL [--checkpoint F] [--public-key F] [--schema S] [--all]
Local: verifies the audit chains straight from the database in one read-only snapshot, against the
signed checkpoints in F (the body of GET /api/v1/audit/checkpoints); --all adds every chain in the
database. --public-key pins the signing key (PEM); without it the key in F is trusted (a warning says so).
Exit codes: 0 every chain verifies, 1 tampering found or a checkpoint rejected, 2 bad arguments.`;

export const RECONCILE_USAGE = `Usage: custodian audit reconcile --database-url URL [--schemas a,b] [--grace-seconds N]
Local (A9): outbox ids minus audit ids per service schema (default identity,objects,agent_gateway,
approvals,audit), rows older than N seconds (default 60). Needs a connection that reads every schema.
Exit codes: 0 nothing missing or stuck, 1 gaps or stuck rows (the JSON report on stdout), 2 bad arguments.`;

async function audit(io: CliIo, args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  const usage =
    'Usage: custodian audit verify [--offline --database-url URL [--checkpoint F] [--public-key F] [--schema S] [--all]] | export [--output F] | archive --before ISO | reconcile --database-url URL';
  if (verb === 'verify') {
    if (rest.includes('--offline')) {
      // Local: straight from the database against signed checkpoints (docs/audit.md).
      const { values } = parse(rest, OFFLINE_VERIFY, VERIFY_OFFLINE_USAGE);
      const databaseUrl = required(values, 'database-url', VERIFY_OFFLINE_USAGE);
      const schema = (values.schema as string | undefined) ?? 'audit';
      if (!SCHEMA_NAME.test(schema)) throw new UsageError('--schema must be a plain schema name', VERIFY_OFFLINE_USAGE);
      if (!values.checkpoint && !values.all) throw new UsageError('give --checkpoint <file> and/or --all', VERIFY_OFFLINE_USAGE);
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { verifyOffline } = require('./audit-verify-offline') as typeof VerifyOffline;
      return await verifyOffline(
        {
          databaseUrl,
          schema,
          all: values.all === true,
          checkpoint: values.checkpoint as string | undefined,
          publicKey: values['public-key'] as string | undefined,
        },
        io.stdout,
        io.stderr,
      );
    }
    const { values } = parse(rest, {}, usage);
    const verdict = await (await connect(io, values.url)).auditVerify();
    printJson(io, verdict);
    return verdict.ok ? 0 : 1;
  }
  if (verb === 'export') {
    const { values } = parse(rest, { output: { type: 'string', short: 'o' } }, usage);
    const api = await connect(io, values.url);
    const res = await api.auditExport();
    const out: NodeJS.WritableStream = values.output ? createWriteStream(values.output as string, { mode: 0o600 }) : io.stdout;
    const progress = new LineProgress('audit export', io.stderr);
    const reader = res.body?.getReader();
    while (reader) {
      const { done, value } = (await reader.read()) as { done: boolean; value?: Uint8Array };
      if (done || !value) break;
      let lines = 0;
      for (const byte of value) if (byte === 10) lines++;
      progress.add(lines);
      if (!out.write(value)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    }
    progress.finish();
    if (out !== io.stdout) await new Promise<void>((resolve) => out.end(() => resolve()));
    io.stderr.write(`view: ${res.headers.get('custodian-audit-view') ?? 'unknown'}\n`);
    return 0;
  }
  if (verb === 'archive') {
    const { values } = parse(rest, { before: { type: 'string' } }, usage);
    const before = required(values, 'before', usage);
    printJson(io, await (await connect(io, values.url)).auditArchive({ body: { before } }));
    return 0;
  }
  if (verb === 'reconcile') {
    const { values } = parse(
      rest,
      { 'database-url': { type: 'string' }, schemas: { type: 'string' }, 'grace-seconds': { type: 'string' } },
      RECONCILE_USAGE,
    );
    const url = required(values, 'database-url', RECONCILE_USAGE);
    const schemas = ((values.schemas as string | undefined) ?? 'identity,objects,agent_gateway,approvals,audit').split(',');
    const bad = schemas.find((name) => !SCHEMA_NAME.test(name));
    if (bad !== undefined) throw new UsageError(`--schemas: not a plain schema name: ${JSON.stringify(bad)}`, RECONCILE_USAGE);
    const grace = (values['grace-seconds'] as string | undefined) ?? '60';
    if (!/^\d{1,9}$/.test(grace)) throw new UsageError('--grace-seconds must be a whole number of seconds', RECONCILE_USAGE);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { reconcile } = require('../apps/audit/src/reconcile/reconcile') as typeof Reconcile;
    const client = new Client({ connectionString: url, application_name: 'custodian-cli-reconcile' });
    await client.connect();
    try {
      const report = await reconcile(client, { schemas, graceMs: Number(grace) * 1000 });
      printJson(io, report);
      const stuck = Object.values(report.unpublished as Record<string, number>).reduce((a, b) => a + b, 0);
      return report.missing.length > 0 || stuck > 0 ? 1 : 0;
    } finally {
      await client.end();
    }
  }
  throw new UsageError(verb ? `unknown audit command ${verb}` : 'audit needs a command', usage);
}

async function settings(io: CliIo, args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  const usage =
    'Usage: custodian settings list | set <name> [--reference env:NAME|file:/path] (value from stdin) | clear <name> | rotate-key';
  if (verb === 'list') {
    const { values } = parse(rest, {}, usage);
    printJson(io, await (await connect(io, values.url)).runtimeSettingsList());
    return 0;
  }
  if (verb === 'set') {
    const setUsage = `${usage}\nThe value is read from stdin (a secret never goes on the command line); a secret may instead name --reference env:NAME | file:/path.`;
    const { values, positionals } = parse(rest, { reference: { type: 'string' } }, setUsage, 1);
    const name = positionals[0];
    const api = await connect(io, values.url);
    const known = (await api.runtimeSettingsList()).items.find((s) => s.name === name);
    if (!known) throw new CustodianApiError(404, 'not_found', undefined, `unknown setting ${name}`);
    if (values.reference && known.type !== 'secret') throw new UsageError('--reference is for secret settings', setUsage);
    const text = values.reference ? '' : await readSecret(io, `Value of ${name}: `);
    const value =
      known.type === 'secret'
        ? values.reference
          ? { reference: values.reference as string }
          : { value: text }
        : known.type === 'integer'
          ? Number(text)
          : known.type === 'boolean'
            ? text.trim() === 'true'
            : text;
    const saved = await api.runtimeSettingsPut({ name, body: { value } });
    // The answer of a secret never holds its value; print it as the server gives it.
    printJson(io, saved);
    return 0;
  }
  if (verb === 'clear') {
    const { values, positionals } = parse(rest, {}, usage, 1);
    await (await connect(io, values.url)).runtimeSettingsClear({ name: positionals[0] });
    io.stderr.write(`cleared ${positionals[0]}\n`);
    return 0;
  }
  if (verb === 'rotate-key') {
    parse(
      rest,
      {},
      `${usage}\nrotate-key runs locally: DATABASE_URL, CUSTODIAN_MASTER_KEY_PREVIOUS and CUSTODIAN_MASTER_KEY from the environment.`,
    );
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { runSettingsKeyRotation } = require('../apps/agent-gateway/src/runtime/rotate-settings-key') as typeof RotateSettingsKey;
    const r = await runSettingsKeyRotation(io.env as NodeJS.ProcessEnv);
    io.stdout.write(`settings re-sealed: ${r.resealed}, already under the new key: ${r.skipped}\n`);
    return 0;
  }
  throw new UsageError(verb ? `unknown settings command ${verb}` : 'settings needs a command', usage);
}

/**
 * The progress of a bundle command: a bar on stderr when stderr is a terminal or `--progress` was
 * given (then also into a log, a line per tenth); otherwise nothing, so a script's stderr stays quiet.
 */
function bundleProgress(io: CliIo, values: Record<string, unknown>, label: string, total: number, unit: string): ProgressBar | undefined {
  return io.stderr.isTTY || values.progress === true ? new ProgressBar(label, total, io.stderr, { unit }) : undefined;
}

async function bundle(io: CliIo, args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  const usage = 'Usage: custodian bundle apply <file> [--dry-run] [--progress] | diff <file> | export [--output F] [--name N] [--progress]';
  if (verb === 'apply' || verb === 'diff') {
    const { values, positionals } = parse(
      rest,
      verb === 'apply' ? { 'dry-run': { type: 'boolean' }, progress: { type: 'boolean' } } : {},
      usage,
      1,
    );
    const dryRun = verb === 'diff' || values['dry-run'] === true;
    // Two steps: read the file; the server validates and applies it (one transaction) and answers.
    const bar = verb === 'apply' ? bundleProgress(io, values, 'bundle apply', 2, 'steps') : undefined;
    const document = await readFile(positionals[0], 'utf8');
    bar?.update(0, `read ${positionals[0]} (${Buffer.byteLength(document).toLocaleString('en-US')} bytes)`);
    const api = await connect(io, values.url);
    bar?.update(1, dryRun ? 'server: dry run' : 'server: applying');
    const result = await api.bundlesApply({ body: { document, dryRun } });
    const changed = result.changes.filter((c) => c.change !== 'unchanged').length;
    bar?.finish(2, `${changed} change(s), ${result.changes.length - changed} unchanged${dryRun ? ' (dry run)' : ''}`);
    printJson(io, result);
    if (verb === 'diff') io.stderr.write(`${changed} change(s), ${result.changes.length - changed} unchanged\n`);
    return 0;
  }
  if (verb === 'export') {
    const { values } = parse(
      rest,
      { output: { type: 'string', short: 'o' }, name: { type: 'string' }, progress: { type: 'boolean' } },
      usage,
    );
    const api = await connect(io, values.url);
    let bar: ProgressBar | undefined;
    const doc = await exportBundle(api, (values.name as string | undefined) ?? 'exported', io.stderr, (done, total, note) => {
      bar ??= bundleProgress(io, values, 'bundle export', total, 'requests');
      if (done === total) bar?.finish(done, note);
      else bar?.update(done, note);
    });
    const text = toYaml(doc);
    if (values.output) {
      const { writeFile } = await import('node:fs/promises');
      await writeFile(values.output as string, text);
    } else io.stdout.write(text);
    return 0;
  }
  throw new UsageError(verb ? `unknown bundle command ${verb}` : 'bundle needs a command', usage);
}

/** Runs one command line; the exit code is the answer (0 done, 1 refused or failed, 2 bad arguments). */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        (command ? io.stdout : io.stderr).write(`${USAGE}\n`);
        return command ? 0 : 2;
      case '--version':
      case 'version':
        io.stdout.write(`${VERSION}\n`);
        return 0;
      case 'login':
        return await login(io, rest);
      case 'logout': {
        const { values } = parse(rest, {}, 'Usage: custodian logout');
        const api = await connect(io, values.url);
        await api.authLogout().catch((error: unknown) => {
          if (!(error instanceof CustodianApiError && error.status === 401)) throw error;
        });
        await removeCredentials(io.env);
        io.stderr.write('signed out\n');
        return 0;
      }
      case 'whoami': {
        const { values } = parse(rest, {}, 'Usage: custodian whoami');
        printJson(io, await (await connect(io, values.url)).authMe());
        return 0;
      }
      case 'users':
      case 'roles':
      case 'groups':
      case 'permission-sets':
        return await directory(io, command, rest);
      case 'api-keys':
        return await apiKeys(io, rest);
      case 'approvals':
        return await approvals(io, rest);
      case 'audit':
        return await audit(io, rest);
      case 'settings':
        return await settings(io, rest);
      case 'bundle':
        return await bundle(io, rest);
      case 'doctor': {
        const { values } = parse(rest, {}, 'Usage: custodian doctor [--url URL]');
        const stored = await loadCredentials(io.env);
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { runDoctor } = require('./doctor') as typeof Doctor;
        return await runDoctor(io, (values.url as string | undefined) || io.env.CUSTODIAN_URL || stored?.url || 'http://127.0.0.1:3000');
      }
      default:
        throw new UsageError(`unknown command ${command}`, USAGE);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      if (error.message) io.stderr.write(`custodian: ${error.message}\n`);
      io.stderr.write(`${error.usage}\n`);
      return error.message ? 2 : 0;
    }
    if (error instanceof CustodianApiError) {
      io.stderr.write(`error: ${error.code} (HTTP ${error.status}): ${error.detail}\n`);
      if (error.details !== undefined) io.stderr.write(`details: ${JSON.stringify(error.details)}\n`);
      if (error.requestId) io.stderr.write(`request id: ${error.requestId}\n`);
      return 1;
    }
    io.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
