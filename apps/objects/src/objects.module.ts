import { Module } from '@nestjs/common';
import { ServiceDatabaseModule } from '@custodian/platform';
import { ActionsController } from './actions/actions.controller';
import { ActionsService } from './actions/actions.service';
import { ApprovalBatchBusHandlers } from './approvals/approval-batch.handler';
import { ApprovalGateService } from './approvals/approval-gate.service';
import { BundleService } from './bundles/bundle.service';
import { BundlesController } from './bundles/bundles.controller';
import { RequestDecisionService } from './decision/request-decision.service';
import { DirectoryReplicaService } from './directory/directory-replica.service';
import { SERVICE_ENTITIES } from './entities';
import { FilesController } from './files/files.controller';
import { FILE_STORAGE_PROVIDER } from './files/files.providers';
import { FilesService } from './files/files.service';
import { GovernedReadBusHandlers } from './governed/governed-read.handler';
import { GovernedRefusals } from './governed/governed-refusals';
import { PermissionImpactBusHandler } from './impact/permission-impact.handler';
import { PermissionImpactService } from './impact/permission-impact.service';
import { ObjectCatalogService } from './metadata/object-catalog.service';
import { ObjectMetadataController } from './metadata/object-metadata.controller';
import { MetadataOperationsBusHandler } from './metadata/metadata-operations.handler';
import { ObjectMetadataService } from './metadata/object-metadata.service';
import { SERVICE_MIGRATIONS } from './migrations';
import { AuditVisibilityBusHandler } from './records/audit-visibility.handler';
import { RecordOperationsBusHandlers } from './records/record-operations.handler';
import { RecordReviewBusHandler } from './records/record-review.handler';
import { RecordsController } from './records/records.controller';
import { RecordQueryService } from './records/record-query.service';
import { RecordWriteService } from './records/record-write.service';
import { AccessExplainController } from './sharing/access-explain.controller';
import { RecordSharesController } from './sharing/record-shares.controller';
import { RecordSharesService } from './sharing/record-shares.service';
import { RecordTransferService } from './sharing/record-transfer.service';
import { AccessExplainService } from './sharing/access-explain.service';
import { SharingRulesController } from './sharing/sharing-rules.controller';
import { SharingRulesService } from './sharing/sharing-rules.service';

/** Object metadata, the directory replica, governed records and ObjectQL (issue #5; docs/objects.md). */
@Module({
  imports: [ServiceDatabaseModule.forService({ service: 'objects', entities: SERVICE_ENTITIES, migrations: SERVICE_MIGRATIONS })],
  controllers: [
    ObjectMetadataController,
    SharingRulesController,
    RecordsController,
    FilesController,
    RecordSharesController,
    AccessExplainController,
    BundlesController,
    ActionsController,
  ],
  providers: [
    DirectoryReplicaService,
    ObjectCatalogService,
    RequestDecisionService,
    ObjectMetadataService,
    RecordQueryService,
    RecordWriteService,
    FilesService,
    FILE_STORAGE_PROVIDER,
    RecordSharesService,
    RecordTransferService,
    AccessExplainService,
    RecordOperationsBusHandlers,
    AuditVisibilityBusHandler,
    RecordReviewBusHandler,
    GovernedRefusals,
    GovernedReadBusHandlers,
    ApprovalGateService,
    ApprovalBatchBusHandlers,
    MetadataOperationsBusHandler,
    BundleService,
    ActionsService,
    SharingRulesService,
    PermissionImpactService,
    PermissionImpactBusHandler,
  ],
})
export class ObjectsModule {}

// The all-in-one applies a local bundle at start (CUSTODIAN_BUNDLE) through the same service as the API.
export { BundleService, parseBundle } from './bundles/bundle.service';
export type { Bundle } from './bundles/bundle.schema';
