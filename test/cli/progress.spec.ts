import { Writable } from 'node:stream';
import { LineProgress } from '../../cli/progress';
import { ProgressBar } from '../../cli/progress-bar';

/** A stream that keeps what was written; `isTTY` as a terminal or a log (a pipe, a file) would say. */
function stream(isTTY: boolean): Writable & { isTTY: boolean; text: () => string } {
  let text = '';
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  }) as Writable & { isTTY: boolean; text: () => string };
  out.isTTY = isTTY;
  out.text = () => text;
  return out;
}

/** A clock the test moves by hand (epoch milliseconds). */
function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('ProgressBar (cli/progress-bar.ts)', () => {
  it('on a terminal redraws one line in place: bar, percent, done/total, rate from the clock, the note', () => {
    const out = stream(true);
    const c = clock();
    const bar = new ProgressBar('chain 1234abcd', 200, out, { width: 10, now: c.now });
    c.advance(2000);
    bar.update(50, 'reading');
    expect(out.text()).toBe('\rchain 1234abcd [###.......]  25% 50/200 rows 25 rows/s reading\x1b[K');
    c.advance(2000);
    bar.finish(200);
    expect(out.text().split('\r')).toEqual([
      '',
      'chain 1234abcd [###.......]  25% 50/200 rows 25 rows/s reading\x1b[K',
      'chain 1234abcd [##########] 100% 200/200 rows 50 rows/s\x1b[K\n',
    ]);
  });

  it('into a log (not a terminal) writes a whole line only when another tenth is done, and always the last one', () => {
    const out = stream(false);
    const c = clock();
    const bar = new ProgressBar('export', 1000, out, { width: 4, unit: 'requests', now: c.now });
    for (let done = 0; done <= 1000; done += 25) {
      c.advance(100);
      bar.update(done);
    }
    bar.finish(1000, 'ok');
    const lines = out.text().split('\n').filter(Boolean);
    expect(out.text()).not.toContain('\r');
    expect(out.text()).not.toContain('\x1b');
    // 0 %, 10 % … 100 % once each, then finish() repeats the last line with its note.
    expect(lines.map((l) => l.match(/\]\s+(\d+)%/)?.[1])).toEqual([
      '0',
      '10',
      '20',
      '30',
      '40',
      '50',
      '60',
      '70',
      '80',
      '90',
      '100',
      '100',
    ]);
    expect(lines[1]).toBe('export [....]  10% 100/1,000 requests 200 requests/s');
    expect(lines.at(-1)).toMatch(/ 1,000\/1,000 requests \d+ requests\/s ok$/);
  });

  it('a total of 0 is complete at once, and done beyond the total is shown as 100 %', () => {
    const empty = stream(false);
    new ProgressBar('empty', 0, empty, { width: 2, now: () => 0 }).finish(0);
    expect(empty.text()).toBe('empty [##] 100% 0/0 rows 0 rows/s\n');
    const over = stream(true);
    new ProgressBar('over', 2, over, { width: 2, now: () => 0 }).update(3);
    expect(over.text()).toContain('[##] 100% 3/2 rows');
  });

  it('a rate over no elapsed time is not a division by zero', () => {
    const out = stream(true);
    new ProgressBar('now', 10, out, { width: 2, now: () => 5 }).update(1);
    expect(out.text()).toBe('\rnow [..]  10% 1/10 rows 1,000 rows/s\x1b[K');
  });
});

describe('LineProgress (cli/progress.ts)', () => {
  it('on a terminal redraws the count and the rate on every add, and finish ends the line', () => {
    const out = stream(true);
    const c = clock();
    const p = new LineProgress('audit export', out, { now: c.now });
    c.advance(500);
    p.add(3);
    c.advance(500);
    p.add(2);
    p.finish();
    expect(out.text()).toBe('\raudit export: 3 lines, 6/s\raudit export: 5 lines, 5/s\raudit export: 5 lines, 5/s done\n');
  });

  it('into a log writes a line each `every` items, never a carriage return, and the total at the end', () => {
    const out = stream(false);
    const c = clock();
    const p = new LineProgress('audit export', out, { every: 10_000, now: c.now });
    for (let i = 0; i < 25; i++) {
      c.advance(100);
      p.add(1_000);
    }
    p.finish();
    expect(out.text()).toBe(
      [
        'audit export: 10,000 lines, 10,000/s',
        'audit export: 20,000 lines, 10,000/s',
        'audit export: 25,000 lines, 10,000/s done',
        '',
      ].join('\n'),
    );
  });

  it('counts what it is told it counts', () => {
    const out = stream(false);
    const p = new LineProgress('copy', out, { unit: 'rows', every: 1, now: () => 0 });
    p.add(1);
    expect(out.text()).toBe('copy: 1 rows, 1,000/s\n');
  });
});
