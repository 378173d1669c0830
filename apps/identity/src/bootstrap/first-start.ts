import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';

/** What the first start of an installation created (kept in memory only, until the banner is printed). */
export interface FirstStart {
  orgId: string;
  orgName: string;
  adminEmail: string;
  /** The admin's password: generated (shown once in the banner) or the configured one. */
  adminPassword: string;
  passwordGenerated: boolean;
}

/** Injection token: `{ hold: true }` makes the bootstrap keep its banner until `print()` is called. */
export const BOOTSTRAP_BANNER = Symbol('BOOTSTRAP_BANNER');
export interface BootstrapBannerOptions {
  hold: boolean;
}

/**
 * The composition root's handle on the first start: whether this start created the installation,
 * and the banner (printed once) to which it may add lines — the all-in-one demo users.
 */
export abstract class FirstStartBanner {
  /** Set only on the start that created the organization and its administrator. */
  abstract firstStart(): FirstStart | undefined;
  /** Prints the banner with `extra` lines once; later calls do nothing. */
  abstract print(extra?: readonly string[]): void;
}

export function bannerText(first: FirstStart, extra: readonly string[] = []): string {
  const lines = [
    '================================================================',
    ' Custodian is set up. Bootstrap administrator:',
    `   organization  ${first.orgName} (${first.orgId})`,
    `   email         ${first.adminEmail}`,
    `   password      ${first.passwordGenerated ? first.adminPassword : '(from CUSTODIAN_ADMIN_PASSWORD)'}`,
    ...(first.passwordGenerated ? [' This password is shown once. Store it now and change it.'] : []),
    ...extra,
    '================================================================',
  ];
  return `\n${lines.join('\n')}\n`;
}

/** Where the banner goes when no terminal is attached: beside the installation's data, readable by its user only. */
export const CREDENTIALS_FILE = 'initial-credentials.txt';

/**
 * Shows the first-start banner, which holds plaintext passwords, without mixing it into the JSON
 * log stream on stdout: on the terminal (stderr) when there is one, otherwise in
 * `<dataDir>/initial-credentials.txt` (mode 0600). A log line says where, never what.
 */
export function showCredentials(
  text: string,
  {
    dataDir,
    logger,
    terminal = process.stderr,
  }: { dataDir: string; logger: Logger; terminal?: Pick<NodeJS.WriteStream, 'isTTY' | 'write'> },
): void {
  if (terminal.isTTY) {
    terminal.write(text);
    logger.info('first-start credentials printed to the terminal (stderr), once');
    return;
  }
  const file = path.join(dataDir, CREDENTIALS_FILE);
  try {
    mkdirSync(dataDir, { recursive: true });
    // Created afresh (never through an existing file or link), readable by this user only.
    rmSync(file, { force: true });
    writeFileSync(file, text, { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
    logger.warn({ file }, 'first-start credentials written to this file (mode 0600): store them, then delete the file');
  } catch (error) {
    // A read-only data directory (a container): stderr is still apart from the JSON log on stdout.
    terminal.write(text);
    logger.warn({ file, reason: (error as Error).message }, 'first-start credentials could not be written to a file; printed to stderr');
  }
}
