import { OutboxEntity } from '@custodian/platform';
import { ObjectDefinitionEntity } from './object-definition.entity';

export const SERVICE_ENTITIES = [ObjectDefinitionEntity, OutboxEntity];
