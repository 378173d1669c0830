import type { Provider } from '@nestjs/common';
import { CONFIG, type CustodianConfig } from '@custodian/platform';
import { FILE_STORAGE, type FileStorage } from './file-storage';
import { LocalFileStorage } from './local-file-storage';
import { S3FileStorage } from './s3-file-storage';

/** The configured storage; the S3 client is only created (and S3 only contacted) when `s3` is chosen. */
export function createFileStorage(config: CustodianConfig): FileStorage {
  return config.files.driver === 's3' ? new S3FileStorage(config.files.s3) : new LocalFileStorage(config.files.dir);
}

export const FILE_STORAGE_PROVIDER: Provider = {
  provide: FILE_STORAGE,
  inject: [CONFIG],
  useFactory: createFileStorage,
};
