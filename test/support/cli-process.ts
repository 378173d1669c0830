import { spawn } from 'node:child_process';
import path from 'node:path';

/** The built CLI (`node scripts/build.mjs` writes it; the e2e project builds before it runs). */
export const CLI = path.resolve(__dirname, '..', '..', 'dist', 'cli', 'custodian.js');

/** How one run of the CLI ended. */
export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built `custodian` as an operator would: a child process with only PATH and HOME (the
 * stored login lives under HOME) plus `env`, `input` on stdin (then closed), stdout and stderr kept.
 */
export function runCli(args: string[], opts: { home: string; input?: string; env?: Record<string, string> }): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: opts.home, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}
