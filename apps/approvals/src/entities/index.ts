import { OutboxEntity } from '@custodian/platform';

/** Only the outbox so far; this service's own tables arrive with its issue. */
export const SERVICE_ENTITIES = [OutboxEntity];
