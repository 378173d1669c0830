import compression from 'compression';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

/** Below this a compressed answer saves less than the work costs. */
export const COMPRESSION_THRESHOLD_BYTES = 1024;

/**
 * gzip / deflate / br for answers of 1 KiB or more whose client sends `Accept-Encoding`, JSON and
 * problem+json included. Never for streams (Server-Sent Events, MCP: a compressor buffers what
 * must arrive at once), file content (already compressed or opaque), or the answers of
 * `/api/v1/auth/*` and `/api/v1/api-keys`, which carry tokens and keys: compressing a secret next to text a client chose would
 * let size reveal it (BREACH).
 */
export function compressionMiddleware(): RequestHandler {
  const compress = compression({ threshold: COMPRESSION_THRESHOLD_BYTES, filter: shouldCompress }) as RequestHandler;
  // A client that accepts no compression (most API clients) costs one header look-up, not the
  // compressor's per-response hooks; caches still learn that the answer varies by the header.
  return (req: Request, res: Response, next: NextFunction): void => {
    // A path that is never compressed skips the compressor's per-response hooks too (MCP clients send
    // Accept-Encoding with every call).
    if (ACCEPTS_COMPRESSION.test(String(req.headers['accept-encoding'] ?? '')) && !neverCompressed(req.path)) {
      void compress(req, res, next);
      return;
    }
    // Nothing has set Vary this early on the usual path: set it without parsing one.
    if (res.hasHeader('vary')) res.vary('Accept-Encoding');
    else res.setHeader('Vary', 'Accept-Encoding');
    next();
  };
}

const ACCEPTS_COMPRESSION = /\b(gzip|deflate|br)\b|\*/i;

/** Streams (MCP), answers that carry secrets (BREACH) and file content: never compressed. */
function neverCompressed(path: string): boolean {
  return (
    path === '/mcp' ||
    path.startsWith('/mcp/') ||
    path.startsWith('/api/v1/auth/') ||
    path.startsWith('/api/v1/api-keys') ||
    path.includes('/files/')
  );
}

function shouldCompress(req: Request, res: Response): boolean {
  if (neverCompressed(req.path)) return false;
  const type = String(res.getHeader('content-type') ?? '');
  if (type.startsWith('text/event-stream')) return false;
  return compression.filter(req, res);
}
