// Fails the whole run, loudly, when the real PostgreSQL or NATS the suite needs is missing.
const net = require('node:net');

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
};
