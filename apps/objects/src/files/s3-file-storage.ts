import type { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { FilesConfig } from '@custodian/platform';
import { isStorageKey, type FileStorage, type PutOptions } from './file-storage';

/**
 * Files in an S3-compatible bucket (AWS S3, Cloudflare R2, MinIO). Credentials come from the AWS
 * default chain (environment, shared files, instance or pod role) and never from Custodian's own
 * settings, so they are never logged by it. Server-side encryption settings are passed through on
 * every write.
 */
export class S3FileStorage implements FileStorage {
  readonly kind = 's3';
  private readonly client: S3Client;
  private readonly bucket: string;

  constructor(
    private readonly settings: FilesConfig['s3'],
    clientOverrides: Partial<S3ClientConfig> = {},
  ) {
    if (!settings.bucket) throw new Error('files: an S3 bucket is required');
    this.bucket = settings.bucket;
    this.client = new S3Client({
      region: settings.region,
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
      forcePathStyle: settings.forcePathStyle,
      // Streamed bodies with a known length, without the aws-chunked trailing checksums that
      // several S3-compatible stores do not accept; integrity is the sha256 Custodian keeps.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...clientOverrides,
    });
  }

  private checked(key: string): string {
    if (!isStorageKey(key)) throw new Error('invalid storage key');
    return key;
  }

  async put(key: string, body: Readable, opts: PutOptions): Promise<void> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.checked(key),
          Body: body,
          ContentLength: opts.size,
          ContentType: opts.contentType,
          ...(this.settings.sse ? { ServerSideEncryption: this.settings.sse } : {}),
          ...(this.settings.kmsKeyId ? { SSEKMSKeyId: this.settings.kmsKeyId } : {}),
        }),
      );
    } catch (error) {
      // A body that failed midway is normally rejected by the store; make sure nothing stays.
      await this.delete(key).catch(() => undefined);
      body.destroy();
      throw error;
    }
  }

  async get(key: string): Promise<Readable | undefined> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.checked(key) }));
      return out.Body as Readable | undefined;
    } catch (error) {
      const name = (error as { name?: string }).name;
      if (name === 'NoSuchKey' || name === 'NotFound') return undefined;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.checked(key) }));
  }

  destroy(): void {
    this.client.destroy();
  }
}
