import type { Writable } from 'node:stream';

/**
 * Progress of work whose total is unknown up front (a streamed export): redrawn in place on a
 * terminal, a line every 10,000 items in a log. Bounded totals use ./progress-bar.ts.
 */
export class LineProgress {
  private readonly started = Date.now();
  private count = 0;
  private lastLogged = 0;

  constructor(
    private readonly label: string,
    private readonly out: Writable & { isTTY?: boolean },
    private readonly every = 10_000,
  ) {}

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
    const secs = Math.max(0.001, (Date.now() - this.started) / 1000);
    return `${this.label}: ${this.count.toLocaleString('en-US')} lines, ${Math.round(this.count / secs).toLocaleString('en-US')}/s`;
  }
}
