/** Shared helpers for the editor's component tests: render the app, drive and observe the stream. */
import { act, fireEvent, render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http } from 'msw';
import { expect } from 'vitest';
import { App } from '@/app/App';
import { STORAGE_KEYS } from '@/config/app';
import { DEFAULT_SUGGEST_ON_PAUSE } from '@/config/suggest-on-pause';
import { chunkedStream, completionEvents, encodeEvents, sseResponse } from './server';

export type Body = Record<string, unknown>;

/**
 * A stream whose chunks are released one at a time by the test; records the request and its abort.
 *
 * The request is kept: in Node's fetch a Request's signal follows the caller's AbortSignal only
 * through a weak reference to a controller the Request owns, so once MSW drops the Request a
 * garbage collection silently cuts the link and the abort never arrives (a test that only held
 * `request.signal` passed or failed depending on when the collector ran).
 */
export function gatedStreamHandler(chunks: string[]) {
  const state = { bodies: [] as Body[], requests: [] as Request[], aborted: false, cancelled: false, waiting: [] as (() => void)[] };
  const handler = http.post('*/generate/stream', async ({ request }) => {
    state.bodies.push((await request.json()) as Body);
    state.requests.push(request);
    request.signal.addEventListener('abort', () => (state.aborted = true));
    return sseResponse(
      chunkedStream(chunks, {
        gate: () => new Promise<void>((resolve) => state.waiting.push(resolve)),
        onCancel: () => (state.cancelled = true),
      }),
    );
  });
  const release = async (count = 1) => {
    for (let i = 0; i < count; i += 1) {
      await waitFor(() => expect(state.waiting.length).toBeGreaterThan(0));
      await act(async () => state.waiting.shift()!());
    }
  };
  return { handler, state, release };
}

/** Every token and the done event as separate chunks, so each can be released on its own. */
export function eventChunks(alternatives: string[][], logprob = -0.5): string[] {
  return completionEvents(alternatives, logprob).map((event) => encodeEvents([event]));
}

/** A handler that answers the whole stream at once and records each request body. */
export function streamingHandler(alternatives: string[][], logprob = -0.5) {
  const bodies: Body[] = [];
  const handler = http.post('*/generate/stream', async ({ request }) => {
    bodies.push((await request.json()) as Body);
    return sseResponse(encodeEvents(completionEvents(alternatives, logprob)));
  });
  return { handler, bodies };
}

/**
 * Renders the editor with suggest-on-pause off (as the writer can switch it), so these tests see
 * only the requests they make; pause-harness.tsx has the suggest-on-pause tests' own setup.
 */
export function setup() {
  window.localStorage.setItem(STORAGE_KEYS.suggestOnPause, JSON.stringify({ ...DEFAULT_SUGGEST_ON_PAUSE, enabled: false }));
  const user = userEvent.setup();
  const view = render(<App />);
  const textarea = screen.getByRole('textbox', { name: 'Abstract draft' }) as HTMLTextAreaElement;
  return { user, textarea, view };
}

export const ghost = () => screen.queryByTestId('ghost-text')?.textContent ?? null;
export const mirrorText = () => screen.getByTestId('editor-mirror').textContent?.replace('\u200b', '');

export function placeCaret(textarea: HTMLTextAreaElement, position: number) {
  textarea.focus();
  textarea.setSelectionRange(position, position);
  fireEvent.select(textarea);
}

