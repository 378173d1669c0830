import type { Readable, Writable } from 'node:stream';

/** What a command talks to: streams and environment are passed in, so tests drive the CLI in-process too. */
export interface CliIo {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean };
  env: Record<string, string | undefined>;
}

/** Bad arguments: the command's usage is printed and the exit code is 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Reads a secret from stdin: all of a pipe (one trailing newline dropped), or one line typed without echo. */
export async function readSecret(io: CliIo, prompt: string): Promise<string> {
  if (io.stdin.isTTY && typeof io.stdin.setRawMode === 'function') {
    io.stderr.write(prompt);
    io.stdin.setRawMode(true);
    return new Promise((resolve, reject) => {
      let value = '';
      const onData = (chunk: Buffer): void => {
        for (const ch of chunk.toString('utf8')) {
          if (ch === '\r' || ch === '\n') return done(undefined);
          if (ch === '\u0003') return done(new Error('cancelled'));
          if (ch === '\u007f') value = value.slice(0, -1);
          else value += ch;
        }
      };
      const done = (error: Error | undefined): void => {
        io.stdin.setRawMode?.(false);
        io.stdin.off('data', onData);
        io.stdin.pause();
        io.stderr.write('\n');
        if (error) reject(error);
        else resolve(value);
      };
      io.stdin.on('data', onData);
      io.stdin.resume();
    });
  }
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

export function printJson(io: CliIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
