/**
 * Helpers for the suggest-on-pause tests. They run on Vitest's fake clock: the app's timers,
 * user-event's and the health poll all wait for the test to move time, so nothing depends on how
 * fast the machine is. MSW's mocked streams need no timers, only the event loop, which
 * advanceTimersByTimeAsync lets run between steps.
 */
import { act, render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import { vi } from 'vitest';
import { App } from '@/app/App';
import { STORAGE_KEYS } from '@/config/app';
import { DEFAULT_SUGGEST_ON_PAUSE, type SuggestOnPause } from '@/config/suggest-on-pause';
import { eventChunks, type Body } from './editor-harness';
import { chunkedStream, sseResponse } from './server';

/**
 * Puts the app and Testing Library on the fake clock. Testing Library recognises fake timers only
 * under Jest's name (it then advances them instead of waiting on a setTimeout that never fires),
 * so Vitest's are offered under that name.
 */
export function installFakeClock(): void {
  vi.useFakeTimers();
  vi.stubGlobal('jest', { advanceTimersByTime: (ms: number) => vi.advanceTimersByTime(ms) });
}

export function restoreClock(): void {
  vi.useRealTimers();
  vi.unstubAllGlobals();
}

/** Moves the fake clock by `ms`, running the timers that fall due and everything they start. */
export async function advance(ms: number): Promise<void> {
  await act(async () => {
    await vi.advanceTimersByTimeAsync(ms);
  });
}

/** Lets pending requests, stream reads and renders finish without moving the clock. */
export const settle = () => advance(0);

export const PAUSE_MS = DEFAULT_SUGGEST_ON_PAUSE.delayMs;

/** Renders the editor with suggest-on-pause configured as given (on, default delay unless said). */
export async function setupPaused(config: Partial<SuggestOnPause> = {}) {
  window.localStorage.setItem(STORAGE_KEYS.suggestOnPause, JSON.stringify({ ...DEFAULT_SUGGEST_ON_PAUSE, ...config }));
  const user = userEvent.setup({ advanceTimers: vi.advanceTimersByTime });
  const view = render(<App />);
  const textarea = screen.getByRole('textbox', { name: 'Abstract draft' }) as HTMLTextAreaElement;
  await settle(); // the first /health answer
  return { user, textarea, view };
}

/** One request to /generate/stream as the mock server saw it. */
export type Exchange = {
  body: Body;
  /** Kept so that its signal keeps following the client's (see gatedStreamHandler). */
  request: Request;
  /** Sends the next `count` events of a gated answer. */
  release: (count?: number) => Promise<void>;
};

export type Reply = Response | { tokens: string[]; gated?: boolean };

/**
 * Answers each /generate/stream request with `reply(body, index)`: a ready Response (an error),
 * or a stream of `tokens` then done, sent at once or event by event when `gated`.
 */
export function recordStreams(reply: (body: Body, index: number) => Reply) {
  const exchanges: Exchange[] = [];
  const handler = http.post('*/generate/stream', async ({ request }) => {
    const body = (await request.json()) as Body;
    const waiting: (() => void)[] = [];
    const answer = reply(body, exchanges.length);
    exchanges.push({
      body,
      request,
      release: async (count = 1) => {
        for (let i = 0; i < count; i += 1) {
          await settle();
          const next = waiting.shift();
          if (!next) throw new Error('the stream is not waiting for its next event');
          next();
          await settle();
        }
      },
    });
    if (answer instanceof Response) return answer;
    const gate = answer.gated ? () => new Promise<void>((resolve) => waiting.push(resolve)) : undefined;
    return sseResponse(chunkedStream(eventChunks([answer.tokens]), { gate }));
  });
  return { handler, exchanges };
}

export const overloaded = (retryAfter?: string) =>
  HttpResponse.json(
    { error: { type: 'overloaded', message: 'The server is busy.' } },
    { status: 429, headers: retryAfter ? { 'Retry-After': retryAfter } : {} },
  );

export const unavailable = () => HttpResponse.json({ error: { type: 'unavailable', message: 'No model is loaded.' } }, { status: 503 });

export const healthDown = http.get('*/health', () => HttpResponse.json({ status: 'error', reason: 'model.onnx is missing' }, { status: 503 }));
