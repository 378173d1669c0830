import { Header, applyDecorators } from '@nestjs/common';

/**
 * For responses that carry a credential (tokens, a new API key's secret): no browser, proxy or
 * CDN may keep a copy (RFC 6749 §5.1, RFC 9111; `Pragma` for HTTP/1.0 caches).
 */
export const NoStore = (): MethodDecorator => applyDecorators(Header('Cache-Control', 'no-store'), Header('Pragma', 'no-cache'));
