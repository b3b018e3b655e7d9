/** The completion endpoint as the editor uses it: request shape and the stream of token/done events. */
import type { GenerateRequest as ContractRequest } from '@/config/generate-contract.generated';
import type { GenerationSettings } from '@/config/generation';
import { PAUSE_SUGGESTION } from '@/config/suggest-on-pause';
import { ApiError, apiErrorFromBody, postEventStream } from '@/lib/api-client';

/** Body of POST /generate/stream: the server's contract (generated from /openapi.json), with the
 * fields the editor always sends made required. */
export type GenerateRequest = ContractRequest &
  Required<Pick<ContractRequest, 'max_new_tokens' | 'temperature' | 'top_p' | 'seed' | 'n' | 'logprobs'>>;

export type TokenUpdate = { kind: 'token'; index: number; text: string; logprob: number | null };

export type DoneUpdate = {
  kind: 'done';
  completions: { text: string; finishReason: string }[];
  promptTokens: number;
  completionTokens: number;
  truncated: boolean;
  seed: number | null;
  timings: { promptMs: number; perTokenMs: number; totalMs: number };
  model: string | null;
};

export type StreamUpdate = TokenUpdate | DoneUpdate;

export function buildGenerateRequest(text: string, settings: GenerationSettings): GenerateRequest {
  return {
    text,
    max_new_tokens: settings.maxNewTokens,
    temperature: settings.temperature,
    top_p: settings.topP,
    seed: settings.seed,
    n: settings.alternatives,
    // Always asked for: the confidence view can be switched on after a suggestion was accepted.
    logprobs: true,
  };
}

/** The short suggestion suggest-on-pause asks for: one alternative, to the end of the sentence, a few tokens. */
export function buildPauseRequest(text: string, settings: GenerationSettings): GenerateRequest {
  return {
    ...buildGenerateRequest(text, settings),
    max_new_tokens: Math.min(settings.maxNewTokens, PAUSE_SUGGESTION.maxNewTokens),
    n: 1,
    stop: [...PAUSE_SUGGESTION.stop],
  };
}

function parseJson(data: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(data);
    if (value && typeof value === 'object') return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new ApiError('The server sent a malformed stream event.', { type: 'stream' });
}

const asNumber = (value: unknown, fallback: number): number => (typeof value === 'number' && Number.isFinite(value) ? value : fallback);

function parseDone(data: Record<string, unknown>): DoneUpdate {
  const completions = Array.isArray(data.completions) ? data.completions : [];
  const usage = (data.usage ?? {}) as Record<string, unknown>;
  const timings = (data.timings ?? {}) as Record<string, unknown>;
  return {
    kind: 'done',
    completions: completions.map((completion: Record<string, unknown>) => ({
      text: typeof completion.text === 'string' ? completion.text : '',
      finishReason: typeof completion.finish_reason === 'string' ? completion.finish_reason : 'unknown',
    })),
    promptTokens: asNumber(usage.prompt_tokens, 0),
    completionTokens: asNumber(usage.completion_tokens, 0),
    truncated: data.truncated === true,
    seed: typeof data.seed === 'number' ? data.seed : null,
    timings: {
      promptMs: asNumber(timings.prompt_ms, 0),
      perTokenMs: asNumber(timings.per_token_ms, 0),
      totalMs: asNumber(timings.total_ms, 0),
    },
    model: typeof data.model === 'string' ? data.model : null,
  };
}

/** Streams a completion: token updates as the model writes, then one done update. */
export async function* streamCompletion(request: GenerateRequest, signal?: AbortSignal): AsyncGenerator<StreamUpdate> {
  for await (const event of postEventStream('/generate/stream', request, signal)) {
    if (event.event === 'token') {
      const data = parseJson(event.data);
      yield {
        kind: 'token',
        index: asNumber(data.index, 0),
        text: typeof data.text === 'string' ? data.text : '',
        logprob: typeof data.logprob === 'number' ? data.logprob : null,
      };
    } else if (event.event === 'done') {
      yield parseDone(parseJson(event.data));
      return;
    } else if (event.event === 'error') {
      throw apiErrorFromBody(parseJson(event.data), null);
    }
    // Other event names are ignored so the server can add new ones.
  }
  throw new ApiError('The stream ended before the suggestion was finished.', { type: 'stream' });
}
