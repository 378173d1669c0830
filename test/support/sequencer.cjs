// Jest's own order, longest suites first on a clean clone too. Jest starts the suites it has
// timings for (its cache, from the last run on this machine) longest first, so no worker is left
// alone with a long suite at the end; without a cache (CI's clean clone) it falls back to file
// size, which starts some small but slow suites (e2e with child processes or a browser) late.
// Here a suite without a cached time takes its time from slow-suites.json (seconds of one full
// run); a suite in neither (a new one) starts first, as jest does with suites it has no time for.
//
// Refresh the list from a full run's report:
//   npx jest --ci --json --outputFile=/tmp/jest.json && node test/support/sequencer.cjs /tmp/jest.json
const { writeFileSync } = require('node:fs');
const path = require('node:path');

// The sequencer jest uses by default, resolved where jest itself resolves it.
const DefaultSequencer = require(
  require.resolve('@jest/test-sequencer', { paths: [path.dirname(require.resolve('jest-config'))] }),
).default;

const root = path.resolve(__dirname, '../..');
const listFile = path.join(__dirname, 'slow-suites.json');
const relative = (file) => path.relative(root, file).split(path.sep).join('/');

class KnownSlowFirstSequencer extends DefaultSequencer {
  known = require(listFile).suites;

  time(test) {
    const cached = super.time(test);
    if (cached !== undefined) return cached;
    const seconds = this.known[relative(test.path)];
    return seconds === undefined ? undefined : seconds * 1000;
  }
}

if (require.main === module) {
  const report = require(path.resolve(process.argv[2]));
  const suites = Object.fromEntries(
    report.testResults
      .map((r) => [relative(r.name), Math.max(1, Math.round((r.endTime - r.startTime) / 1000))])
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)),
  );
  const about = `Seconds per suite of one full run (${new Date(report.startTime).toISOString().slice(0, 16)}Z); test/support/sequencer.cjs`;
  writeFileSync(listFile, `${JSON.stringify({ about, suites }, null, 2)}\n`);
  console.log(`${Object.keys(suites).length} suites written to ${relative(listFile)}`);
}

module.exports = KnownSlowFirstSequencer;
