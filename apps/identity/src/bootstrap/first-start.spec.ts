import { mkdtempSync, readFileSync, rmSync, statSync, existsSync, writeFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { CREDENTIALS_FILE, bannerText, showCredentials } from './first-start';

// The first-start banner carries plaintext passwords: never on stdout (the JSON log stream), never in a log line.

describe('showCredentials', () => {
  const first = {
    orgId: 'o1',
    orgName: 'Default',
    adminEmail: 'admin@x.local',
    adminPassword: 'S3cret-generated-pw',
    passwordGenerated: true,
  };
  let dataDir: string;
  let logLines: string[];
  let logger: pino.Logger;
  let stdoutWrite: jest.SpyInstance;

  beforeEach(() => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'custodian-banner-'));
    logLines = [];
    logger = pino({ level: 'info' }, { write: (line: string) => logLines.push(line) });
    stdoutWrite = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  });
  afterEach(() => {
    stdoutWrite.mockRestore();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('with a terminal: writes the banner to it (stderr), not to stdout, and logs where without the password', () => {
    const written: string[] = [];
    showCredentials(bannerText(first), { dataDir, logger, terminal: { isTTY: true, write: (t: string) => written.push(t) > 0 } });
    expect(written.join('')).toContain('S3cret-generated-pw');
    expect(stdoutWrite).not.toHaveBeenCalled();
    expect(existsSync(path.join(dataDir, CREDENTIALS_FILE))).toBe(false);
    expect(logLines.join('')).toContain('terminal');
    expect(logLines.join('')).not.toContain('S3cret-generated-pw');
  });

  it('without a terminal: writes a 0600 file in the data dir and logs its path, never the password', () => {
    const written: string[] = [];
    showCredentials(bannerText(first), { dataDir, logger, terminal: { isTTY: false, write: (t: string) => written.push(t) > 0 } });
    const file = path.join(dataDir, CREDENTIALS_FILE);
    expect(readFileSync(file, 'utf8')).toContain('S3cret-generated-pw');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(written).toEqual([]);
    expect(stdoutWrite).not.toHaveBeenCalled();
    expect(logLines.join('')).toContain(file);
    expect(logLines.join('')).not.toContain('S3cret-generated-pw');
  });

  it('replaces a link planted at the file name instead of writing through it', () => {
    const target = path.join(dataDir, 'elsewhere.txt');
    writeFileSync(target, 'untouched');
    symlinkSync(target, path.join(dataDir, CREDENTIALS_FILE));
    showCredentials(bannerText(first), { dataDir, logger, terminal: { isTTY: false, write: () => true } });
    expect(readFileSync(target, 'utf8')).toBe('untouched');
    expect(readFileSync(path.join(dataDir, CREDENTIALS_FILE), 'utf8')).toContain('S3cret-generated-pw');
  });

  it('when the file cannot be written: falls back to stderr (never stdout) and says so', () => {
    const written: string[] = [];
    const notADir = path.join(dataDir, 'file');
    writeFileSync(notADir, '');
    showCredentials(bannerText(first), { dataDir: notADir, logger, terminal: { isTTY: false, write: (t: string) => written.push(t) > 0 } });
    expect(written.join('')).toContain('S3cret-generated-pw');
    expect(stdoutWrite).not.toHaveBeenCalled();
    expect(logLines.join('')).toContain('printed to stderr');
  });
});
