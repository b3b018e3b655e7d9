/** The MSW server for unit tests, with handlers that speak the API's contract (see README, API section). */
import { http, HttpResponse } from 'msw';
import { setupServer } from 'msw/node';

/** GET /health's answer; generate-contract.test.ts checks it has the fields /openapi.json lists. */
export const HEALTH_OK = {
  status: 'ok',
  model: 'distilgpt2-arxiv',
  quantization: 'int8',
  parameters: 81_912_576,
  load_seconds: 0.4,
  context_length: 1024,
  vocab_size: 50257,
  generation_defaults: { max_new_tokens: 40, temperature: 0.8, top_p: 0.95, top_k: 0, repetition_penalty: 1.0 },
};

export const healthOk = http.get('*/health', () => HttpResponse.json(HEALTH_OK));

/** Encodes events in the text/event-stream format. */
export function encodeEvents(events: { event: string; data: unknown }[]): string {
  return events.map(({ event, data }) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`).join('');
}

export function doneEvent(texts: string[], overrides: Record<string, unknown> = {}) {
  return {
    event: 'done',
    data: {
      completions: texts.map((text) => ({ text, finish_reason: 'length' })),
      usage: { prompt_tokens: 5, completion_tokens: 8 },
      truncated: false,
      seed: 1234,
      timings: { prompt_ms: 10, per_token_ms: 12.5, total_ms: 200 },
      model: 'distilgpt2-arxiv',
      ...overrides,
    },
  };
}

/** token events for each alternative's tokens, then done with the joined texts. */
export function completionEvents(alternatives: string[][], logprob = -0.5) {
  const tokens = alternatives.flatMap((tokensOfOne, index) =>
    tokensOfOne.map((text) => ({ event: 'token', data: { index, text, logprob } })),
  );
  return [...tokens, doneEvent(alternatives.map((tokensOfOne) => tokensOfOne.join('')))];
}

/**
 * A streaming body that sends `chunks` one by one, each after `gate()` resolves, so a test can
 * look at the page between tokens. Closing is signalled through `onCancel` when the client aborts.
 */
export function chunkedStream(chunks: string[], options: { gate?: () => Promise<void>; onCancel?: () => void } = {}) {
  const encoder = new TextEncoder();
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent >= chunks.length) {
        controller.close();
        return;
      }
      if (options.gate) await options.gate();
      controller.enqueue(encoder.encode(chunks[sent]));
      sent += 1;
    },
    cancel() {
      options.onCancel?.();
    },
  });
}

export function sseResponse(body: string | ReadableStream<Uint8Array>) {
  return new HttpResponse(body, { headers: { 'Content-Type': 'text/event-stream' } });
}

export const server = setupServer(healthOk);
