import type { Writable } from 'node:stream';

export interface ProgressBarOptions {
  /** Characters between the brackets; default 30. */
  width?: number;
  /** What is counted, e.g. `rows` (the default) or `requests`. */
  unit?: string;
  /** The clock (epoch milliseconds); tests inject one. */
  now?: () => number;
}

/**
 * A one-line progress bar for a terminal (redrawn in place) or a log (a line each time another
 * tenth is done). Always on the stream it is given (stderr), never stdout.
 */
export class ProgressBar {
  private readonly now: () => number;
  private readonly started: number;
  private readonly width: number;
  private readonly unit: string;
  private lastDecile = -1;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly out: Writable & { isTTY?: boolean } = process.stderr,
    options: ProgressBarOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.started = this.now();
    this.width = options.width ?? 30;
    this.unit = options.unit ?? 'rows';
  }

  /** `done` of the total; `note` (what is being done now) follows the numbers. */
  update(done: number, note?: string): void {
    const ratio = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const filled = Math.round(ratio * this.width);
    const secs = Math.max(0.001, (this.now() - this.started) / 1000);
    const line = `${this.label} [${'#'.repeat(filled)}${'.'.repeat(this.width - filled)}] ${String(Math.floor(ratio * 100)).padStart(3)}% ${done.toLocaleString('en-US')}/${this.total.toLocaleString('en-US')} ${this.unit} ${Math.round(done / secs).toLocaleString('en-US')} ${this.unit}/s${note ? ` ${note}` : ''}`;
    if (this.out.isTTY) {
      // Clear to the end of the line: a shorter note must not leave the end of a longer one.
      this.out.write(`\r${line}\x1b[K`);
    } else {
      const decile = Math.floor(ratio * 10);
      if (decile !== this.lastDecile) {
        this.lastDecile = decile;
        this.out.write(`${line}\n`);
      }
    }
  }

  finish(done: number, note?: string): void {
    this.lastDecile = -1;
    this.update(done, note);
    if (this.out.isTTY) this.out.write('\n');
  }
}
