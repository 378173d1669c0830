import type { Writable } from 'node:stream';

export interface LineProgressOptions {
  /** On a log (not a terminal): one line every this many items; default 10,000. */
  every?: number;
  /** What is counted, e.g. `lines`. */
  unit?: string;
  /** The clock (epoch milliseconds); tests inject one. */
  now?: () => number;
}

/**
 * Progress of work whose total is unknown up front (a streamed export): redrawn in place on a
 * terminal, a line every `every` items in a log. Bounded totals use ./progress-bar.ts. Always on
 * the stream it is given (stderr), never stdout, so piped output stays clean.
 */
export class LineProgress {
  private readonly now: () => number;
  private readonly started: number;
  private readonly every: number;
  private readonly unit: string;
  private count = 0;
  private lastLogged = 0;

  constructor(
    private readonly label: string,
    private readonly out: Writable & { isTTY?: boolean },
    options: LineProgressOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.started = this.now();
    this.every = options.every ?? 10_000;
    this.unit = options.unit ?? 'lines';
  }

  add(n: number): void {
    this.count += n;
    if (this.out.isTTY) this.out.write(`\r${this.line()}`);
    else if (this.count - this.lastLogged >= this.every) {
      this.lastLogged = this.count;
      this.out.write(`${this.line()}\n`);
    }
  }

  finish(): void {
    this.out.write(`${this.out.isTTY ? '\r' : ''}${this.line()} done\n`);
  }

  private line(): string {
    const secs = Math.max(0.001, (this.now() - this.started) / 1000);
    return `${this.label}: ${this.count.toLocaleString('en-US')} ${this.unit}, ${Math.round(this.count / secs).toLocaleString('en-US')}/s`;
  }
}
