import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { loadConfig } from '@custodian/platform';
import { fromColumnValue, toColumnValue, FieldValueError } from '../metadata/field-types';
import { attachmentDisposition, contentTypeOf, fileNameOf } from './file-headers';
import { isStorageKey, storageKey } from './file-storage';
import { LocalFileStorage } from './local-file-storage';

const ORG = '01a23575-838a-743c-9604-36a4d1b951de';
const REC = '01a23575-adab-7bd4-a18a-318e9ec12940';
const FILE = '01a23576-62a0-77c9-a292-e5cff7de33d3';

describe('file names and media types of uploads', () => {
  it('takes the UTF-8 filename* over filename, unquotes quoted names, and defaults to "file"', () => {
    expect(fileNameOf(undefined)).toBe('file');
    expect(fileNameOf('attachment')).toBe('file');
    expect(fileNameOf('attachment; filename="a \\"b\\".pdf"')).toBe('a "b".pdf');
    expect(fileNameOf('attachment; filename=plain.txt')).toBe('plain.txt');
    expect(fileNameOf(`attachment; filename="fallback.txt"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt`)).toBe('résumé.txt');
  });

  it.each([
    'attachment; filename="../../etc/passwd"',
    'attachment; filename="dir/x"',
    `attachment; filename*=UTF-8''a%5Cb`,
    `attachment; filename*=UTF-8''%2e%2e`,
    'attachment; filename="."',
    `attachment; filename*=UTF-8''nul%00`,
    `attachment; filename*=UTF-8''%E0%A4%A`,
    `attachment; filename="${'x'.repeat(256)}"`,
  ])('refuses a path-like or invalid name: %s', (header) => {
    expect(() => fileNameOf(header)).toThrow(expect.objectContaining({ code: 'validation_failed' }));
  });

  it('accepts allowed media types exactly or by type/*, parameters dropped; refuses the rest (415)', () => {
    const allowed = ['application/pdf', 'image/*'];
    expect(contentTypeOf('Application/PDF; charset=binary', allowed)).toBe('application/pdf');
    expect(contentTypeOf('image/png', allowed)).toBe('image/png');
    for (const bad of [undefined, '', 'text/html', 'image', 'image/', 'imagex/png', 'application/pdf2', 'application/pdf/x'])
      expect(() => contentTypeOf(bad, allowed)).toThrow(expect.objectContaining({ code: 'unsupported_media_type' }));
  });

  it('answers downloads as attachments with an ASCII fallback that cannot break out of the header', () => {
    expect(attachmentDisposition('a"b;c%.pdf')).toBe(`attachment; filename="a_b_c_.pdf"; filename*=UTF-8''a%22b%3Bc%25.pdf`);
    expect(attachmentDisposition("it's (1).pdf")).toBe(`attachment; filename="it's (1).pdf"; filename*=UTF-8''it%27s%20%281%29.pdf`);
  });
});

describe('storage keys', () => {
  it('are built from checked server-side segments only', () => {
    const key = storageKey({ orgId: ORG, object: 'contract', recordId: REC, field: 'doc', fileId: FILE });
    expect(key).toBe(`${ORG}/contract/${REC}/doc/${FILE}`);
    expect(isStorageKey(key)).toBe(true);
    for (const field of ['..', '../x', 'a/b', '', '.doc', 'DOC'])
      expect(() => storageKey({ orgId: ORG, object: 'contract', recordId: REC, field, fileId: FILE })).toThrow();
    expect(isStorageKey(`${ORG}/contract/${REC}/doc/../../x`)).toBe(false);
  });
});

describe('LocalFileStorage', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(path.join(tmpdir(), 'custodian-local-files-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('refuses keys that are not storage keys, and keeps every path under its root', () => {
    const storage = new LocalFileStorage(path.join(root, 'files'));
    for (const key of ['../x', `${ORG}/../../etc/passwd`, '/etc/passwd', `${ORG}/contract/${REC}/doc/..`]) {
      expect(() => storage.pathOf(key)).toThrow();
    }
    expect(storage.pathOf(`${ORG}/contract/${REC}/doc/${FILE}`)).toBe(path.join(root, 'files', ORG, 'contract', REC, 'doc', FILE));
  });

  it('stores 0600 files in 0700 directories, and leaves nothing when the body fails midway', async () => {
    const storage = new LocalFileStorage(path.join(root, 'files'));
    const key = `${ORG}/contract/${REC}/doc/${FILE}`;
    await storage.put(key, Readable.from([Buffer.from('hello')]), { size: 5, contentType: 'text/plain' });
    expect(statSync(storage.pathOf(key)).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(root, 'files')).mode & 0o777).toBe(0o700);
    const chunks: Buffer[] = [];
    for await (const c of (await storage.get(key))!) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('hello');

    const other = `${ORG}/contract/${REC}/doc/${REC}`;
    const failing = new Readable({
      read() {
        this.push(Buffer.from('partial'));
        this.destroy(new Error('client went away'));
      },
    });
    await expect(storage.put(other, failing, { size: 100, contentType: 'text/plain' })).rejects.toThrow('client went away');
    expect(await storage.get(other)).toBeUndefined();
    expect(statSync(path.dirname(storage.pathOf(other))).isDirectory()).toBe(true);
    expect(readdirSync(path.dirname(storage.pathOf(key)))).toEqual([FILE]);

    await storage.delete(key);
    await storage.delete(key);
    expect(await storage.get(key)).toBeUndefined();
  });
});

describe('files settings', () => {
  it('default to local disk under the data dir with a conservative type list', () => {
    const c = loadConfig({ CUSTODIAN_DATA_DIR: '/var/lib/custodian' }, 'all-in-one');
    expect(c.files).toMatchObject({ driver: 'local', dir: '/var/lib/custodian/files', maxBytes: 10 * 1_048_576 });
    expect(c.files.allowedContentTypes).toContain('application/pdf');
    expect(c.files.allowedContentTypes).not.toContain('text/html');
  });

  it('read the S3 settings and refuse inconsistent ones', () => {
    const c = loadConfig(
      {
        CUSTODIAN_FILES_DRIVER: 's3',
        CUSTODIAN_FILES_S3_BUCKET: 'b',
        CUSTODIAN_FILES_S3_ENDPOINT: 'https://minio.internal:9000',
        CUSTODIAN_FILES_S3_FORCE_PATH_STYLE: 'true',
        CUSTODIAN_FILES_S3_SSE: 'aws:kms',
        CUSTODIAN_FILES_S3_KMS_KEY_ID: 'alias/k',
      },
      'all-in-one',
    );
    expect(c.files.s3).toEqual({
      bucket: 'b',
      endpoint: 'https://minio.internal:9000',
      region: 'us-east-1',
      forcePathStyle: true,
      sse: 'aws:kms',
      kmsKeyId: 'alias/k',
    });
    expect(() => loadConfig({ CUSTODIAN_FILES_DRIVER: 's3' }, 'all-in-one')).toThrow(/CUSTODIAN_FILES_S3_BUCKET is required/);
    expect(() => loadConfig({ CUSTODIAN_FILES_DRIVER: 'ftp' }, 'all-in-one')).toThrow(/CUSTODIAN_FILES_DRIVER/);
    expect(() => loadConfig({ CUSTODIAN_FILES_S3_KMS_KEY_ID: 'k' }, 'all-in-one')).toThrow(/KMS_KEY_ID needs/);
    expect(() => loadConfig({ CUSTODIAN_FILES_S3_SSE: 'rot13' }, 'all-in-one')).toThrow(/CUSTODIAN_FILES_S3_SSE/);
    expect(() => loadConfig({ CUSTODIAN_FILES_S3_ENDPOINT: 'https://key:secret@r2.example' }, 'all-in-one')).toThrow(/credentials/);
    expect(() => loadConfig({ CUSTODIAN_FILES_ALLOWED_TYPES: 'application/json' }, 'all-in-one')).toThrow(/JSON/);
    expect(() => loadConfig({ CUSTODIAN_FILES_ALLOWED_TYPES: 'text/plain,<script>' }, 'all-in-one')).toThrow(/not a content type/);
    expect(() => loadConfig({ CUSTODIAN_FILES_MAX_BYTES: '0' }, 'all-in-one')).toThrow(/CUSTODIAN_FILES_MAX_BYTES/);
  });
});

describe('the file field type', () => {
  it('refuses every value written through the records API, null included', () => {
    for (const value of [null, { id: FILE, name: 'x' }, 'x', JSON.stringify({ id: FILE })])
      expect(() => toColumnValue({ name: 'doc', type: 'file' }, value)).toThrow(FieldValueError);
  });

  it('answers the stored metadata as an object', () => {
    const meta = { id: FILE, name: 'a.pdf', size: 1, contentType: 'application/pdf', sha256: 'ab', uploadedAt: '2026-01-01T00:00:00.000Z' };
    expect(fromColumnValue('file', JSON.stringify(meta))).toEqual(meta);
    expect(fromColumnValue('file', null)).toBeNull();
  });
});
