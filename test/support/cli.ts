import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { CliIo } from '../../cli/io';
import { run } from '../../cli/run';

/** Streams and an environment for the `custodian` CLI run in-process; out() and err() are what it wrote. */
export function fakeIo(env: Record<string, string | undefined> = {}, input = ''): CliIo & { out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const stdin = new PassThrough();
  stdin.end(input);
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  return { stdin, stdout, stderr, env, out: () => out, err: () => err };
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * `custodian <argv>` in-process (cli/run.ts, as dist/cli/custodian.js runs it) with only `env` for an
 * environment: HOME is a directory without stored credentials unless env names one.
 */
export async function runCustodian(argv: string[], env: Record<string, string | undefined> = {}, input = ''): Promise<CliRun> {
  const io = fakeIo({ HOME: path.join(tmpdir(), 'custodian-cli-no-home'), ...env }, input);
  const code = await run(argv, io);
  return { code, stdout: io.out(), stderr: io.err() };
}
