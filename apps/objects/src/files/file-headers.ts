import { ErrorCode } from '@custodian/contracts';
import { CustodianException } from '@custodian/platform';

const MAX_NAME = 255;
// eslint-disable-next-line no-control-regex -- refusing control characters is the point
const UNSAFE_NAME = /[\u0000-\u001f\u007f/\\]/;

function badName(message: string): CustodianException {
  return new CustodianException(ErrorCode.ValidationFailed, message, { issues: [{ path: '/headers/content-disposition', message }] });
}

/**
 * The upload's media type (parameters dropped, lower case) when the allow-list accepts it
 * (`type/subtype` exactly or `type/*`); anything else is 415.
 */
export function contentTypeOf(header: string | undefined, allowed: readonly string[]): string {
  const type = (header ?? '').split(';')[0].trim().toLowerCase();
  const ok =
    /^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$/.test(type) &&
    allowed.some((a) => a === type || (a.endsWith('/*') && type.startsWith(a.slice(0, -1))));
  if (!ok)
    throw new CustodianException(ErrorCode.UnsupportedMediaType, 'This content type is not accepted for uploads', {
      accepted: allowed,
    });
  return type;
}

/**
 * The file name from the upload's `Content-Disposition` (`filename*=UTF-8''…` preferred over
 * `filename="…"`); "file" when absent. A name is a display name only, never part of a storage path,
 * but a name that looks like a path (slashes, "." or "..", control characters) is refused.
 */
export function fileNameOf(header: string | undefined): string {
  if (header === undefined || header.trim() === '') return 'file';
  let name: string | undefined;
  const extended = /(?:^|;)\s*filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(header);
  if (extended) {
    try {
      name = decodeURIComponent(extended[1].trim());
    } catch {
      throw badName('The filename* parameter is not valid percent-encoded UTF-8');
    }
  } else {
    const quoted = /(?:^|;)\s*filename\s*=\s*"((?:[^"\\]|\\.)*)"/.exec(header);
    const token = /(?:^|;)\s*filename\s*=\s*([^";\s]+)/.exec(header);
    name = quoted ? quoted[1].replace(/\\(.)/g, '$1') : token?.[1];
  }
  if (name === undefined) return 'file';
  name = name.normalize('NFC');
  if (name.length === 0 || name.length > MAX_NAME) throw badName(`A file name has 1 to ${MAX_NAME} characters`);
  if (UNSAFE_NAME.test(name) || name === '.' || name === '..')
    throw badName('A file name cannot contain path separators or control characters');
  return name;
}

/** `Content-Disposition: attachment` for a download: an ASCII fallback plus the exact name in UTF-8. */
export function attachmentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\%;]/g, '_');
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
