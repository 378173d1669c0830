import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Controller, Get, Inject, type DynamicModule, Module, Param, Res } from '@nestjs/common';
import { CustodianException, Public, ApiContract } from '@custodian/platform';
import type { Response } from 'express';

/** The built console (console/dist), looked up from the source tree or from dist/ (the build copies it there). */
export function findConsoleDir(from = __dirname): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'console', 'dist');
    if (existsSync(path.join(candidate, 'index.html'))) return candidate;
    if (path.dirname(dir) === dir) return undefined;
  }
}

const CONSOLE_DIR = Symbol('CONSOLE_DIR');

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};

/**
 * The console's policy: its own scripts only (no inline script, no eval), styles from itself plus the
 * one <style> tag the component library writes, allowed by a nonce that is new on every page load;
 * it talks only to this origin's API and cannot be framed.
 */
export function consoleCsp(nonce: string): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    `style-src 'self' 'nonce-${nonce}'`,
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function securityHeaders(res: Response): void {
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('referrer-policy', 'no-referrer');
  res.setHeader('x-frame-options', 'DENY');
  res.setHeader('cross-origin-opener-policy', 'same-origin');
  res.setHeader('cross-origin-resource-policy', 'same-origin');
}

/**
 * Serves the single-page console at /console: hashed assets with a long cache, and index.html for
 * every other path under /console so the app's own routes survive a reload. Public because it holds
 * no data: the app signs in against the API like any other client.
 */
@Controller('console')
export class ConsoleController {
  private readonly files = new Map<string, Buffer>();

  constructor(@Inject(CONSOLE_DIR) private readonly dir: string | null) {}

  @Public()
  @ApiContract({
    summary: 'The web console (static files; it signs in against the API like any client)',
    responses: { 200: { contentType: 'text/html' } },
  })
  @Get()
  index(@Res() res: Response): void {
    this.sendIndex(res);
  }

  @Public()
  @ApiContract({ summary: 'A static file of the web console', responses: { 200: { contentType: 'application/octet-stream' } } })
  @Get('*path')
  asset(@Param('path') segments: string[] | string, @Res() res: Response): void {
    const rel = (Array.isArray(segments) ? segments.join('/') : segments) ?? '';
    const file = this.resolve(rel);
    if (file && path.basename(file) !== 'index.html') {
      securityHeaders(res);
      res.setHeader('content-type', TYPES[path.extname(file)] ?? 'application/octet-stream');
      // Vite names every asset by its content hash, so a file under assets/ never changes.
      res.setHeader('cache-control', rel.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
      res.send(this.read(file));
      return;
    }
    if (rel.startsWith('assets/') || path.extname(rel) !== '') throw CustodianException.notFound('No such console file');
    this.sendIndex(res);
  }

  private sendIndex(res: Response): void {
    const file = this.dir && path.join(this.dir, 'index.html');
    if (!file || !existsSync(file)) {
      throw CustodianException.notFound('The console is not built (run npm run build)');
    }
    const nonce = randomBytes(16).toString('base64');
    securityHeaders(res);
    res.setHeader('content-security-policy', consoleCsp(nonce));
    res.setHeader('content-type', TYPES['.html']);
    res.setHeader('cache-control', 'no-store');
    res.send(this.read(file).toString('utf8').replaceAll('__CSP_NONCE__', nonce));
  }

  /** A file inside the console directory, or undefined: never a path that climbs out of it. */
  private resolve(rel: string): string | undefined {
    // Dot files (the build's source hash) are not part of the app.
    if (!this.dir || rel.includes('\0') || rel.split('/').some((s) => s.startsWith('.'))) return undefined;
    const full = path.resolve(this.dir, rel);
    if (!full.startsWith(this.dir + path.sep)) return undefined;
    try {
      return statSync(full).isFile() ? full : undefined;
    } catch {
      return undefined;
    }
  }

  private read(file: string): Buffer {
    let data = this.files.get(file);
    if (!data) {
      data = readFileSync(file);
      this.files.set(file, data);
    }
    return data;
  }
}

@Module({})
export class ConsoleModule {
  static serving(dir = findConsoleDir()): DynamicModule {
    return {
      module: ConsoleModule,
      controllers: [ConsoleController],
      providers: [{ provide: CONSOLE_DIR, useValue: dir ?? null }],
    };
  }
}
