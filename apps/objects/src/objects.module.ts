import { Module } from '@nestjs/common';
import { ServiceDatabaseModule } from '@custodian/platform';
import { SERVICE_ENTITIES } from './entities';
import { ObjectMetadataController } from './metadata/object-metadata.controller';
import { SERVICE_MIGRATIONS } from './migrations';

/** Object metadata, records, ObjectQL and sharing (issue #5 builds it out). */
@Module({
  imports: [ServiceDatabaseModule.forService({ service: 'objects', entities: SERVICE_ENTITIES, migrations: SERVICE_MIGRATIONS })],
  controllers: [ObjectMetadataController],
})
export class ObjectsModule {}
