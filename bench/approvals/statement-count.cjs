// Counts the SQL statements every part of the process sends while one `POST /api/v1/approvals/bulk`
// of the benchmark runs (approvals, objects, identity, the outbox relay and the audit store alike),
// and prints them by statement text after each bulk call, with the call's wall time and CPU time:
//   node -r ./bench/approvals/statement-count.cjs scripts/run-ts.cjs bench/approvals/approvals.bench.ts
// Measurement aid only (it wraps pg's Client#query and global fetch); never loaded by the product.
const path = require('node:path');
const pg = require(path.join(process.cwd(), 'node_modules', 'pg'));

const stats = new Map();
let counting = false;
const normalise = (text) => String(text).replace(/\s+/g, ' ').replace(/\$\d+/g, '$').slice(0, 110);

const query = pg.Client.prototype.query;
pg.Client.prototype.query = function countedQuery(config, values, callback) {
  if (counting) {
    const key = normalise(typeof config === 'string' ? config : config && config.text);
    stats.set(key, (stats.get(key) ?? 0) + 1);
  }
  return query.call(this, config, values, callback);
};

const fetch = globalThis.fetch;
globalThis.fetch = async (url, init) => {
  const bulk = String(url).endsWith('/approvals/bulk');
  if (!bulk) return fetch(url, init);
  stats.clear();
  counting = true;
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  try {
    return await fetch(url, init);
  } finally {
    counting = false;
    const wall = Number(process.hrtime.bigint() - started) / 1e6;
    const used = process.cpuUsage(cpu);
    const items = JSON.parse(String(init?.body ?? '{"items":[]}')).items.length;
    const rows = [...stats.entries()].sort((a, b) => b[1] - a[1]);
    const total = rows.reduce((n, [, c]) => n + c, 0);
    console.error(
      `bulk of ${items}: ${wall.toFixed(0)} ms wall, ${((used.user + used.system) / 1000).toFixed(0)} ms CPU; ` +
        `${total} statements (${(total / Math.max(1, items)).toFixed(1)} per item)`,
    );
    for (const [text, n] of rows.slice(0, 25)) console.error(`${String(n).padStart(7)}  ${text}`);
  }
};
