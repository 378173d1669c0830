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
