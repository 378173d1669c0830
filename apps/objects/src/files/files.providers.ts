import type { Provider } from '@nestjs/common';
import { CONFIG, type CustodianConfig } from '@custodian/platform';
import { FILE_STORAGE, type FileStorage } from './file-storage';
import { LocalFileStorage } from './local-file-storage';

/**
 * The configured storage. The S3 client is loaded and created only when `s3` is chosen: nothing
 * contacts S3 otherwise, and the SDK (about half a second to load) does not slow every start.
 */
export function createFileStorage(config: CustodianConfig): FileStorage {
  if (config.files.driver !== 's3') return new LocalFileStorage(config.files.dir);
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only when configured (see above)
  const { S3FileStorage } = require('./s3-file-storage') as typeof import('./s3-file-storage');
  return new S3FileStorage(config.files.s3);
}

export const FILE_STORAGE_PROVIDER: Provider = {
  provide: FILE_STORAGE,
  inject: [CONFIG],
  useFactory: createFileStorage,
};
