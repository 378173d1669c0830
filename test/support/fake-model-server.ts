import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A chat completion request as the fake server received it (the body the runtime sent). */
export interface ChatRequest {
  model: string;
  messages: Array<{
    role: string;
    content?: string | null;
    tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }>;
    tool_call_id?: string;
  }>;
  tools?: Array<{ type: 'function'; function: { name: string; description?: string; parameters?: unknown } }>;
  stream?: boolean;
  max_tokens?: number;
}

/** What the scripted model does for one request. */
export type Step =
  | { text: string; chunks?: number; usage?: { prompt: number; completion: number } }
  | { toolCalls: Array<{ name: string; arguments: string; id?: string }>; text?: string; usage?: { prompt: number; completion: number } }
  | { status: number; error?: string; headers?: Record<string, string> }
  /** Never answers (the client's time limit must end it). */
  | { hang: true }
  /** Sends a stream that is not JSON. */
  | { garbage: true };

export type Script = (req: ChatRequest, n: number) => Step;

export interface FakeModelServer {
  /** The base URL clients use (`…/v1`). */
  readonly url: string;
  /** Every request received, in order. */
  readonly requests: ChatRequest[];
  /** The Authorization header of each request, in order. */
  readonly authorizations: Array<string | undefined>;
  /** TCP connections accepted so far. */
  connections(): number;
  script(script: Script): void;
  /** Answers every request `ms` after it arrived (0, the default: at once), as a slow model does. */
  delay(ms: number): void;
  close(): Promise<void>;
}

function send(res: ServerResponse, chunk: unknown): void {
  res.write(`data: ${JSON.stringify(chunk)}\n\n`);
}

/**
 * An OpenAI-compatible chat completions server over real HTTP, answering from a deterministic
 * script: text (streamed in chunks), tool calls (split across chunks as real servers do), error
 * statuses, a request that never answers, and a broken stream. It answers at once, so a benchmark
 * against it measures the runtime, not a model.
 */
export async function startFakeModelServer(initial: Script = () => ({ text: 'ok' })): Promise<FakeModelServer> {
  let script = initial;
  const requests: ChatRequest[] = [];
  const authorizations: Array<string | undefined> = [];
  let connections = 0;
  let delayMs = 0;
  const delayed = new Set<NodeJS.Timeout>();
  const hanging = new Set<ServerResponse>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (delayMs > 0) {
      // The body is read (and the request answered) only once the delay is over.
      req.pause();
      const timer = setTimeout(() => {
        delayed.delete(timer);
        req.resume();
      }, delayMs);
      delayed.add(timer);
    }
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'not found' } }));
        return;
      }
      const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as ChatRequest;
      requests.push(body);
      authorizations.push(req.headers.authorization);
      const step = script(body, requests.length - 1);
      const id = `chatcmpl-${requests.length}`;
      const base = { id, object: 'chat.completion.chunk', created: 0, model: body.model };
      if ('hang' in step) {
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      }
      if ('status' in step) {
        res
          .writeHead(step.status, { 'content-type': 'application/json', ...(step.headers ?? {}) })
          .end(JSON.stringify({ error: { message: step.error ?? 'scripted error', type: 'scripted' } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      if ('garbage' in step) {
        res.end('data: {not json\n\n');
        return;
      }
      if ('toolCalls' in step) {
        if (step.text)
          send(res, { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: step.text }, finish_reason: null }] });
        step.toolCalls.forEach((call, index) => {
          const half = Math.floor(call.arguments.length / 2);
          send(res, {
            ...base,
            choices: [
              {
                index: 0,
                delta: {
                  tool_calls: [
                    {
                      index,
                      id: call.id ?? `call_${requests.length}_${index}`,
                      type: 'function',
                      function: { name: call.name, arguments: call.arguments.slice(0, half) },
                    },
                  ],
                },
                finish_reason: null,
              },
            ],
          });
          send(res, {
            ...base,
            choices: [
              { index: 0, delta: { tool_calls: [{ index, function: { arguments: call.arguments.slice(half) } }] }, finish_reason: null },
            ],
          });
        });
        send(res, { ...base, choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] });
        const usage = step.usage ?? { prompt: 10, completion: 5 };
        send(res, {
          ...base,
          choices: [],
          usage: { prompt_tokens: usage.prompt, completion_tokens: usage.completion, total_tokens: usage.prompt + usage.completion },
        });
      } else {
        const n = Math.max(1, step.chunks ?? 3);
        const size = Math.ceil(step.text.length / n);
        for (let i = 0; i < step.text.length; i += size)
          send(res, { ...base, choices: [{ index: 0, delta: { content: step.text.slice(i, i + size) }, finish_reason: null }] });
        send(res, { ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
        const usage = step.usage ?? { prompt: 10, completion: 5 };
        send(res, {
          ...base,
          choices: [],
          usage: { prompt_tokens: usage.prompt, completion_tokens: usage.completion, total_tokens: usage.prompt + usage.completion },
        });
      }
      res.end('data: [DONE]\n\n');
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    authorizations,
    connections: () => connections,
    script(next) {
      script = next;
    },
    delay(ms) {
      delayMs = ms;
    },
    async close() {
      for (const timer of delayed) clearTimeout(timer);
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
