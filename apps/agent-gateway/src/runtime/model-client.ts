import OpenAI from 'openai';
import type { ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';

export type ModelErrorCode =
  'model_not_configured' | 'model_timeout' | 'model_rate_limited' | 'model_unavailable' | 'model_refused' | 'model_bad_response';

/** A model request that did not give an answer, with a message a person can act on. */
export class ModelError extends Error {
  constructor(
    readonly code: ModelErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ModelError';
  }
}

export interface ModelRequest {
  baseUrl: string;
  apiKey?: string;
  model: string;
  timeoutMs: number;
  maxRetries: number;
  messages: ChatCompletionMessageParam[];
  tools: ChatCompletionTool[];
  maxTokens?: number;
  signal?: AbortSignal;
}

export interface ModelToolCall {
  id: string;
  name: string;
  /** The raw argument text as the model wrote it (parsed, and refused if malformed, by the loop). */
  arguments: string;
}

export interface ModelAnswer {
  content: string;
  toolCalls: ModelToolCall[];
  promptTokens?: number;
  completionTokens?: number;
  finishReason?: string;
}

const MAX_TOOL_CALLS_PER_ANSWER = 32;
const MAX_CLIENTS = 100;
const clients = new Map<string, OpenAI>();

/** One client per endpoint, key and retry count, so connections to the model are kept alive between requests. */
function clientFor(baseUrl: string, apiKey: string | undefined, maxRetries: number): OpenAI {
  const key = `${baseUrl}\u0000${apiKey ?? ''}\u0000${maxRetries}`;
  let client = clients.get(key);
  if (!client) {
    client = new OpenAI({ baseURL: baseUrl, apiKey: apiKey ?? 'unset', maxRetries });
    clients.set(key, client);
    if (clients.size > MAX_CLIENTS) clients.delete(clients.keys().next().value as string);
  }
  return client;
}
const MAX_ANSWER_CHARS = 200_000;

/**
 * One streamed chat completion through the `openai` client against any OpenAI-compatible endpoint.
 * Text deltas go to `onDelta` as they arrive; tool calls are assembled from their fragments. Every
 * failure becomes a ModelError whose message names the endpoint's host and what to check.
 */
export async function streamChat(req: ModelRequest, onDelta: (text: string) => void): Promise<ModelAnswer> {
  const host = new URL(req.baseUrl).host;
  // The client's own timeout surfaces as a plain connection error on some runtimes: our timer says which it was.
  const client = clientFor(req.baseUrl, req.apiKey, req.maxRetries);
  const answer: ModelAnswer = { content: '', toolCalls: [] };
  const calls = new Map<number, ModelToolCall>();
  const abort = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort();
  }, req.timeoutMs);
  const onOuterAbort = (): void => abort.abort();
  req.signal?.addEventListener('abort', onOuterAbort, { once: true });
  try {
    const stream = await client.chat.completions.create(
      {
        model: req.model,
        messages: req.messages,
        ...(req.tools.length > 0 ? { tools: req.tools } : {}),
        stream: true,
        stream_options: { include_usage: true },
        ...(req.maxTokens ? { max_tokens: req.maxTokens } : {}),
      },
      { signal: abort.signal, timeout: req.timeoutMs + 1000 },
    );
    for await (const chunk of stream) {
      if (chunk.usage) {
        answer.promptTokens = chunk.usage.prompt_tokens;
        answer.completionTokens = chunk.usage.completion_tokens;
      }
      const choice = chunk.choices?.[0];
      if (!choice) continue;
      if (choice.finish_reason) answer.finishReason = choice.finish_reason;
      const delta = choice.delta;
      if (typeof delta?.content === 'string' && delta.content.length > 0) {
        if (answer.content.length + delta.content.length > MAX_ANSWER_CHARS)
          throw new ModelError('model_bad_response', `The model at ${host} sent an answer longer than ${MAX_ANSWER_CHARS} characters`);
        answer.content += delta.content;
        onDelta(delta.content);
      }
      for (const part of delta?.tool_calls ?? []) {
        const index = typeof part.index === 'number' ? part.index : 0;
        let call = calls.get(index);
        if (!call) {
          if (calls.size >= MAX_TOOL_CALLS_PER_ANSWER)
            throw new ModelError(
              'model_bad_response',
              `The model at ${host} asked for more than ${MAX_TOOL_CALLS_PER_ANSWER} tool calls at once`,
            );
          call = { id: '', name: '', arguments: '' };
          calls.set(index, call);
        }
        if (part.id) call.id = part.id;
        if (part.function?.name) call.name += part.function.name;
        if (part.function?.arguments) call.arguments += part.function.arguments;
        if (call.arguments.length > 256 * 1024)
          throw new ModelError('model_bad_response', `The model at ${host} sent tool arguments over 256 KiB`);
      }
    }
  } catch (error) {
    if (timedOut) throw new ModelError('model_timeout', `The model at ${host} did not answer within ${req.timeoutMs} ms`);
    if (req.signal?.aborted)
      throw new ModelError('model_timeout', `The request to the model at ${host} was stopped: the turn reached its time limit`);
    throw toModelError(error, host, req.timeoutMs);
  } finally {
    clearTimeout(timer);
    req.signal?.removeEventListener('abort', onOuterAbort);
  }
  answer.toolCalls = [...calls.entries()].sort(([a], [b]) => a - b).map(([i, c]) => ({ ...c, id: c.id || `call_${i}` }));
  return answer;
}

function toModelError(error: unknown, host: string, timeoutMs: number): ModelError {
  if (error instanceof ModelError) return error;
  if (error instanceof OpenAI.APIConnectionTimeoutError)
    return new ModelError('model_timeout', `The model at ${host} did not answer within ${timeoutMs} ms`);
  if (error instanceof OpenAI.RateLimitError)
    return new ModelError('model_rate_limited', `The model at ${host} is rate limiting requests (429); try again later`);
  if (error instanceof OpenAI.AuthenticationError || error instanceof OpenAI.PermissionDeniedError)
    return new ModelError(
      'model_refused',
      `The model at ${host} refused the API key (${(error as { status?: number }).status}); check the model.api_key setting`,
    );
  if (error instanceof OpenAI.NotFoundError)
    return new ModelError(
      'model_refused',
      `The model at ${host} answered 404: check model.base_url (it usually ends in /v1) and the model name`,
    );
  if (error instanceof OpenAI.APIConnectionError)
    return new ModelError('model_unavailable', `The model at ${host} could not be reached; check model.base_url and that the server runs`);
  if (error instanceof OpenAI.APIUserAbortError)
    return new ModelError('model_timeout', `The request to the model at ${host} was stopped (time limit of the turn)`);
  if (error instanceof OpenAI.APIError) {
    const status = error.status ?? 0;
    return status >= 500
      ? new ModelError('model_unavailable', `The model at ${host} failed (${status}); try again later`)
      : new ModelError('model_refused', `The model at ${host} refused the request (${status})`);
  }
  // A stream that does not parse, or any other surprise from the client: never the raw text.
  return new ModelError('model_bad_response', `The answer of the model at ${host} could not be read`);
}
