// Fails the whole run, loudly, when the real PostgreSQL or NATS the suite needs is missing.
const { execFileSync } = require('node:child_process');
const net = require('node:net');
const path = require('node:path');

function reachable(url, defaultPort) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: u.hostname, port: Number(u.port || defaultPort) });
    socket.setTimeout(2000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

module.exports = async () => {
  process.env.TEST_DATABASE_URL ||= 'postgres://postgres@127.0.0.1:5432/postgres';
  process.env.NATS_URL ||= 'nats://127.0.0.1:4222';
  const missing = [];
  if (!(await reachable(process.env.TEST_DATABASE_URL, 5432))) missing.push(`PostgreSQL at ${process.env.TEST_DATABASE_URL}`);
  if (!(await reachable(process.env.NATS_URL, 4222))) missing.push(`NATS at ${process.env.NATS_URL}`);
  if (missing.length > 0) {
    throw new Error(`The test suite needs real services and will not skip them. Not reachable: ${missing.join('; ')}`);
  }
  // Every service's migrations applied once into a template database; hosts start on clones of it.
  if (!process.env.CUSTODIAN_TEST_TEMPLATE_DB) {
    const root = path.resolve(__dirname, '../..');
    const out = execFileSync(process.execPath, [path.join(root, 'scripts/run-ts.cjs'), path.join(root, 'test/support/build-template.ts')], {
      cwd: root,
      env: process.env,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    process.env.CUSTODIAN_TEST_TEMPLATE_DB = out.trim().split('\n').pop();
  }
};
