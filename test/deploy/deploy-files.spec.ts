import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

// The deployment files are data: these tests read them as the tools would (compose with YAML
// merge keys, Helm values as plain YAML) and fail when a service is added without being deployed,
// loses its database/bus wiring, or the image stops running as a non-root user.

const root = path.resolve(__dirname, '..', '..');
const read = (rel: string): string => readFileSync(path.join(root, rel), 'utf8');

type Dict = Record<string, unknown>;
interface ComposeService {
  image?: string;
  command?: string | string[];
  build?: { context?: string; dockerfile?: string; args?: Record<string, string> | string[] };
  environment?: Record<string, string> | string[];
  secrets?: Array<string | { source: string; target?: string }>;
  ports?: Array<string | { target: number; published: string | number }>;
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: { test?: string | string[] };
  privileged?: boolean;
  restart?: string;
  stop_grace_period?: string;
  cap_add?: string[];
  volumes?: string[];
}
interface Compose {
  services: Record<string, ComposeService>;
  secrets?: Record<string, { file?: string }>;
  volumes?: Record<string, unknown>;
}

const compose = parse(read('docker-compose.yml'), { merge: true }) as Compose;
const values = parse(read('helm/custodian/values.yaml')) as Dict & {
  services: Record<string, { enabled?: boolean; replicas?: number; resources?: Dict }>;
};
const configSource = read('libs/platform/src/config/config.ts');

/** Services that have an entry point, i.e. that someone can start on their own. */
const appServices = readdirSync(path.join(root, 'apps'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(path.join(root, 'apps', d.name, 'src', 'main.ts')))
  .map((d) => d.name)
  .sort();

const FIVE = ['agent-gateway', 'approvals', 'audit', 'identity', 'objects'];
const PORTS: Record<string, number> = { identity: 3001, objects: 3002, 'agent-gateway': 3003, approvals: 3004, audit: 3005 };

function envOf(svc: ComposeService): Record<string, string> {
  const env = svc.environment ?? {};
  if (!Array.isArray(env)) return env;
  return Object.fromEntries(env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

function buildArgsOf(svc: ComposeService): Record<string, string> {
  const args = svc.build?.args ?? {};
  if (!Array.isArray(args)) return args;
  return Object.fromEntries(args.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

/** Every environment variable name config.ts reads (plus those read by file in the same module). */
function knownConfigVariables(): Set<string> {
  const names = new Set<string>();
  for (const m of configSource.matchAll(/env\.([A-Z][A-Z0-9_]*)/g)) names.add(m[1]);
  for (const m of configSource.matchAll(/(?:int|url)\('([A-Z][A-Z0-9_]*)'/g)) names.add(m[1]);
  return names;
}

describe('service inventory', () => {
  it('finds the five services in apps/', () => {
    expect(appServices).toEqual(FIVE);
  });

  it.each(appServices)('%s has a compose service and a Helm values entry', (name) => {
    expect(compose.services[name]).toBeDefined();
    expect(values.services[name]).toBeDefined();
  });

  it('deploys nothing that has no entry point', () => {
    const custodianInCompose = Object.entries(compose.services)
      .filter(([, svc]) => svc.build !== undefined)
      .map(([name]) => name)
      .sort();
    expect(custodianInCompose).toEqual(appServices);
    expect(Object.keys(values.services).sort()).toEqual(appServices);
  });
});

describe('docker-compose.yml', () => {
  it.each(FIVE)('%s builds from deploy/Dockerfile with its own SERVICE arg', (name) => {
    const svc = compose.services[name];
    expect(svc.build?.context ?? '.').toBe('.');
    expect(svc.build?.dockerfile).toBe('deploy/Dockerfile');
    expect(buildArgsOf(svc).SERVICE).toBe(name);
  });

  it.each(FIVE)('%s is wired to PostgreSQL and NATS', (name) => {
    const env = envOf(compose.services[name]);
    expect(env.DATABASE_URL).toMatch(/^postgres(ql)?:\/\/[^@]+@postgres:5432\//);
    expect(env.NATS_URL).toBe('nats://nats:4222');
  });

  it.each(FIVE)('%s waits for a healthy PostgreSQL, restarts, and has time to shut down', (name) => {
    const svc = compose.services[name];
    expect(Array.isArray(svc.depends_on)).toBe(false);
    const deps = svc.depends_on as Record<string, { condition?: string }>;
    expect(deps.postgres?.condition).toBe('service_healthy');
    expect(deps.nats).toBeDefined();
    expect(svc.restart).toBe('unless-stopped');
    expect(svc.stop_grace_period).toBe('30s');
  });

  it.each(FIVE)('%s publishes its own port onto container port 3000', (name) => {
    const ports = (compose.services[name].ports ?? []).map(String);
    expect(ports).toHaveLength(1);
    expect(ports[0]).toMatch(new RegExp(`(^|:)${PORTS[name]}:3000$`));
  });

  it('publishes each host port once', () => {
    const published = Object.values(compose.services).flatMap((svc) => (svc.ports ?? []).map((p) => String(p).split(':').at(-2)));
    expect(new Set(published).size).toBe(published.length);
  });

  it('runs no service privileged or with added capabilities', () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      expect({ name, privileged: svc.privileged ?? false }).toEqual({ name, privileged: false });
      expect({ name, cap_add: svc.cap_add ?? [] }).toEqual({ name, cap_add: [] });
    }
  });

  it('runs NATS with JetStream on a persistent volume', () => {
    const nats = compose.services.nats;
    expect(nats.image).toMatch(/^nats:2\.10/);
    const command = Array.isArray(nats.command) ? nats.command : (nats.command ?? '').split(/\s+/);
    expect(command).toContain('-js');
    expect(command[command.indexOf('-sd') + 1]).toBe('/data');
    expect(nats.volumes?.some((v) => v.endsWith(':/data'))).toBe(true);
  });

  it('gives PostgreSQL a pg_isready healthcheck and a volume', () => {
    const pg = compose.services.postgres;
    expect(pg.image).toMatch(/^postgres:16/);
    expect([pg.healthcheck?.test].flat().join(' ')).toContain('pg_isready');
    expect(pg.volumes?.some((v) => v.endsWith(':/var/lib/postgresql/data'))).toBe(true);
  });

  it('hands every service the master key as a file secret, never as a plain variable', () => {
    expect(compose.secrets?.master_key?.file).toBe('./deploy/secrets/master.key');
    for (const name of FIVE) {
      const service = compose.services[name];
      const secretNames = (service.secrets ?? []).map((s) => (typeof s === 'string' ? s : s.source));
      expect({ name, secretNames }).toEqual({ name, secretNames: ['master_key'] });
      expect({ name, file: envOf(service).CUSTODIAN_MASTER_KEY_FILE }).toEqual({ name, file: '/run/secrets/master_key' });
      expect(envOf(service).CUSTODIAN_MASTER_KEY).toBeUndefined();
    }
  });

  it('requires the bootstrap admin credentials from the environment', () => {
    const env = envOf(compose.services.identity);
    expect(env.CUSTODIAN_ADMIN_EMAIL).toMatch(/^\$\{CUSTODIAN_ADMIN_EMAIL:\?[^}]*\}$/);
    expect(env.CUSTODIAN_ADMIN_PASSWORD).toMatch(/^\$\{CUSTODIAN_ADMIN_PASSWORD:\?[^}]*\}$/);
  });

  it('sets only environment variables that config.ts reads', () => {
    const known = knownConfigVariables();
    for (const name of FIVE) {
      const unknown = Object.keys(envOf(compose.services[name])).filter((k) => !known.has(k));
      expect({ name, unknown }).toEqual({ name, unknown: [] });
    }
  });

  it('keeps the master key out of git', () => {
    const ignore = read('deploy/secrets/.gitignore')
      .split(/\r?\n/)
      .map((l) => l.trim());
    expect(ignore).toContain('*');
    expect(ignore).toContain('!.gitignore');
  });
});
