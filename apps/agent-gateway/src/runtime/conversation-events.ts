import { defineEvent } from '@custodian/contracts';
import { Type } from '@sinclair/typebox';

/**
 * A conversation's live event, fanned out to every gateway replica so an `/events` stream on one
 * sees what another produced (a turn resumed by a pending-action decision runs on the replica that
 * consumed the decision). Only the agent gateway publishes and listens; over NATS only (in one
 * process the runner delivers to its own watchers directly).
 */
export const ConversationEventBroadcast = defineEvent({
  subject: 'evt.agent-gateway.conversation',
  payload: Type.Object(
    {
      /** The replica that produced it (it delivered to its own watchers already). */
      origin: Type.String({ minLength: 1, maxLength: 64 }),
      conversationId: Type.String({ format: 'uuid' }),
      type: Type.Union([Type.Literal('message'), Type.Literal('pending'), Type.Literal('state'), Type.Literal('done')]),
      data: Type.Record(Type.String({ maxLength: 64 }), Type.Unknown()),
    },
    { additionalProperties: false },
  ),
});
