import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig, type CustodianConfig } from '@custodian/platform';
import type { CliIo } from './io';

type Verdict = 'ok' | 'fail' | 'skip' | 'warn';

/**
 * `custodian doctor`: the local configuration (the same loader the server uses), the database and
 * the bus it names, the clock against the server's `Date`, and the master key material. Runs on the
 * host (or pod) of the installation; exit 1 when any check fails.
 */
export async function runDoctor(io: CliIo, url: string): Promise<number> {
  const results: Array<{ check: string; verdict: Verdict; detail: string }> = [];
  const report = (check: string, verdict: Verdict, detail: string): void => {
    results.push({ check, verdict, detail });
    io.stdout.write(`${verdict.padEnd(4)}  ${check.padEnd(10)}  ${detail}\n`);
  };

  let config: CustodianConfig | undefined;
  try {
    config = loadConfig(io.env, io.env.CUSTODIAN_SERVICE ? 'service' : 'all-in-one', io.env.CUSTODIAN_SERVICE as never);
    report('config', 'ok', `${config.mode}; data directory ${config.dataDir}`);
  } catch (error) {
    report('config', 'fail', error instanceof ConfigError ? error.message : String(error));
  }

  const databaseUrl = io.env.DATABASE_URL;
  if (!databaseUrl) report('database', 'skip', 'no DATABASE_URL: the all-in-one starts its embedded PostgreSQL itself');
  else {
    const { Client } = await import('pg');
    const client = new Client({ connectionString: databaseUrl, connectionTimeoutMillis: 3000, application_name: 'custodian-doctor' });
    try {
      await client.connect();
      const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version') AS v");
      report('database', 'ok', `PostgreSQL ${rows[0].v} reachable`);
    } catch (error) {
      report('database', 'fail', `unreachable: ${(error as Error).message}`);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  const natsUrl = io.env.NATS_URL;
  if (!natsUrl) report('bus', 'skip', 'no NATS_URL: the in-process bus');
  else {
    const { connect } = await import('nats');
    try {
      const nc = await connect({ servers: natsUrl, timeout: 3000, name: 'custodian-doctor', reconnect: false });
      const rtt = await nc.rtt();
      await nc.close();
      report('bus', 'ok', `NATS reachable (round trip ${rtt} ms)`);
    } catch (error) {
      report('bus', 'fail', `NATS unreachable: ${(error as Error).message}`);
    }
  }

  try {
    const before = Date.now();
    const res = await fetch(`${url.replace(/\/+$/, '')}/health/ready`, { signal: AbortSignal.timeout(5000) });
    const after = Date.now();
    const date = Date.parse(res.headers.get('date') ?? '');
    const tolerance = config?.auth.clockToleranceSeconds ?? 30;
    report('server', res.status === 200 ? 'ok' : 'fail', `${url} /health/ready answered ${res.status}`);
    if (Number.isNaN(date)) report('clock', 'warn', 'the server sent no Date header');
    else {
      // The Date header has whole seconds: compare against the middle of the round trip, allow that second.
      const skew = Math.abs(date - (before + after) / 2) / 1000;
      report('clock', skew <= tolerance ? 'ok' : 'fail', `skew vs the server ${skew.toFixed(1)} s (tolerance ${tolerance} s)`);
    }
  } catch (error) {
    report('server', 'fail', `${url} unreachable: ${(error as Error).message}`);
    report('clock', 'skip', 'no answer from the server');
  }

  if (config?.secrets.masterKey) report('keys', 'ok', `master key from ${config.secrets.masterKeySource ?? 'the environment'}`);
  else {
    const file = path.join(config?.dataDir ?? path.resolve(io.env.CUSTODIAN_DATA_DIR || '.custodian'), 'master.key');
    if (!existsSync(file)) report('keys', 'fail', `no CUSTODIAN_MASTER_KEY / CUSTODIAN_MASTER_KEY_FILE and no ${file}`);
    else {
      const mode = statSync(file).mode & 0o777;
      const length = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64').length;
      if (length !== 32) report('keys', 'fail', `${file} is not a 32-byte base64 key`);
      else if (mode & 0o077) report('keys', 'warn', `${file} is readable by others (mode ${mode.toString(8)}); chmod 600 it`);
      else report('keys', 'ok', `${file} (mode ${mode.toString(8)})`);
    }
  }
  return results.some((r) => r.verdict === 'fail') ? 1 : 0;
}
