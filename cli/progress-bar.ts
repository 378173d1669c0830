import type { Writable } from 'node:stream';

/** A one-line progress bar for a terminal (redrawn in place) or a log (a line every 10%). */
export class ProgressBar {
  private readonly started = Date.now();
  private lastDecile = -1;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly out: Writable & { isTTY?: boolean } = process.stderr,
    private readonly width = 30,
  ) {}

  update(done: number): void {
    const ratio = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const filled = Math.round(ratio * this.width);
    const secs = Math.max(0.001, (Date.now() - this.started) / 1000);
    const line = `${this.label} [${'#'.repeat(filled)}${'.'.repeat(this.width - filled)}] ${String(Math.floor(ratio * 100)).padStart(3)}% ${done.toLocaleString('en-US')}/${this.total.toLocaleString('en-US')} rows ${Math.round(done / secs).toLocaleString('en-US')} rows/s`;
    if (this.out.isTTY) {
      this.out.write(`\r${line}`);
    } else {
      const decile = Math.floor(ratio * 10);
      if (decile !== this.lastDecile) {
        this.lastDecile = decile;
        this.out.write(`${line}\n`);
      }
    }
  }

  finish(done: number): void {
    this.lastDecile = -1;
    this.update(done);
    if (this.out.isTTY) this.out.write('\n');
  }
}
