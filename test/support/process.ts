import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { pollUntil } from './poll';

export const ROOT = path.resolve(__dirname, '..', '..');

export interface ServiceProcess {
  proc: ChildProcess;
  output: string[];
  /** Resolves with the HTTP port once the process says it is listening. */
  port(): Promise<number>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts a built entry point (dist/...) as its own OS process and collects its output lines. */
export function startProcess(entry: string, env: Record<string, string>): ServiceProcess {
  const proc = spawn(process.execPath, [path.join(ROOT, entry)], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  let exited: number | null | undefined;
  const exit = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => {
      exited = code;
      resolve(code);
    }),
  );
  for (const stream of [proc.stdout, proc.stderr]) {
    let buffered = '';
    stream?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      output.push(...lines);
    });
  }
  return {
    proc,
    output,
    port: () =>
      Promise.race([
        exit.then((code) => {
          throw new Error(`${entry} exited with ${code}:\n${output.slice(-20).join('\n')}`);
        }),
        pollUntil(
          () => {
            for (const line of output) {
              const aio = /running at http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
              if (aio) return Number(aio[1]);
              if (line.startsWith('{') && line.includes('"listening"')) return (JSON.parse(line) as { port: number }).port;
            }
            return undefined;
          },
          { timeoutMs: 30_000, what: `${entry} to listen` },
        ).catch((error: unknown) => {
          // What the process said so far tells a slow start on a busy machine from a stuck one.
          throw new Error(`${error instanceof Error ? error.message : String(error)}; its last output:\n${output.slice(-20).join('\n')}`);
        }),
      ]),
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (exited !== undefined) return exited;
      proc.kill(signal);
      return exit;
    },
  };
}
