/**
 * Suggest-on-pause, on a fake clock: the delay, what cancels a suggestion, the stale-response
 * guard, the shrinking suggestion, respect for the server (429, a server that is down), the switch,
 * and what a screen reader hears. Everything is done from the keyboard.
 */
import { fireEvent, render, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { App } from '@/app/App';
import { HEALTH_RETRY_MS, STORAGE_KEYS } from '@/config/app';
import { DEFAULT_SETTINGS } from '@/config/generation';
import { PAUSE_SUGGESTION } from '@/config/suggest-on-pause';
import { ghost } from '@/testing/editor-harness';
import {
  PAUSE_MS,
  advance,
  healthDown,
  installFakeClock,
  overloaded,
  recordStreams,
  restoreClock,
  settle,
  setupPaused,
  unavailable,
  type Reply,
} from '@/testing/pause-harness';
import { nth } from '@/testing/nth';
import { healthOk, server } from '@/testing/server';

beforeEach(installFakeClock);
afterEach(restoreClock);

/** Serves `replies` in order (the last one again if more requests come). */
function serve(...replies: Reply[]) {
  const recorded = recordStreams((_, index) => nth(replies, Math.min(index, replies.length - 1)));
  server.use(recorded.handler);
  return recorded.exchanges;
}

const status = () => screen.getByRole('status').textContent;

describe('a suggestion appears when the writer pauses', () => {
  it('asks for a short suggestion once typing stopped for the delay; Tab accepts it', async () => {
    const exchanges = serve({ tokens: [' to', ' learn'] });
    const { user, textarea } = await setupPaused();
    await user.type(textarea, 'We propose a method');

    await advance(PAUSE_MS - 1);
    expect(exchanges).toHaveLength(0);
    await advance(1);
    expect(exchanges).toHaveLength(1);
    expect(nth(exchanges, 0).body).toMatchObject({
      text: 'We propose a method',
      max_new_tokens: PAUSE_SUGGESTION.maxNewTokens,
      n: 1,
      stop: [...PAUSE_SUGGESTION.stop],
    });
    await settle();
    expect(ghost()).toBe(' to learn');

    await user.keyboard('{Tab}');
    expect(textarea.value).toBe('We propose a method to learn');
    expect(ghost()).toBeNull();
    await advance(PAUSE_MS * 3);
    expect(exchanges).toHaveLength(1);
  });

  it('each keystroke starts the delay again', async () => {
    const exchanges = serve({ tokens: [' deep'] });
    const { user, textarea } = await setupPaused();
    await user.type(textarea, 'We');
    await advance(PAUSE_MS - 100);
    await user.type(textarea, ' train');
    await advance(PAUSE_MS - 100);
    expect(exchanges).toHaveLength(0);
    await advance(100);
    expect(exchanges.map((exchange) => exchange.body.text)).toEqual(['We train']);
  });

  it('after a space, asks without it and shows the next word only if the model begins with a space', async () => {
    const exchanges = serve({ tokens: [' method', ' to'] }, { tokens: ['n', ' idea'] });
    const { user, textarea } = await setupPaused();
    await user.type(textarea, 'We propose a ');
    await advance(PAUSE_MS);
    expect(nth(exchanges, 0).body.text).toBe('We propose a');
    await settle();
    expect(ghost()).toBe('method to');
    await user.keyboard('{Tab}');
    expect(textarea.value).toBe('We propose a method to');

    await user.type(textarea, ' a ');
    await advance(PAUSE_MS);
    await settle();
    expect(nth(exchanges, 1).body.text).toBe('We propose a method to a');
    expect(ghost()).toBeNull(); // "an idea" does not continue "a "
  });

  it('asks nothing inside a word, nor once the cursor moved away from the last edit', async () => {
    const exchanges = serve({ tokens: [' x'] });
    const { user, textarea } = await setupPaused();
    await user.type(textarea, 'We propose');
    await user.keyboard('{ArrowLeft}{ArrowLeft}{ArrowLeft}');
    await advance(PAUSE_MS * 3);
    await user.keyboard('x'); // "propxose": the cursor is inside a word
    await advance(PAUSE_MS * 3);
    expect(textarea.value).toBe('We propxose');
    expect(exchanges).toHaveLength(0);
  });
});

describe('the writer is never held up', () => {
  /** Types, pauses, and shows the first token of a suggestion whose request is still in flight. */
  async function streamingSuggestion() {
    const exchanges = serve({ tokens: [' one', ' two', ' three'], gated: true }, { tokens: [' later'] });
    const view = await setupPaused();
    await view.user.type(view.textarea, 'We count');
    await advance(PAUSE_MS);
    await nth(exchanges, 0).release();
    expect(ghost()).toBe(' one');
    return { ...view, exchanges };
  }

  it.each([
    ['a keystroke', async ({ user }: Awaited<ReturnType<typeof streamingSuggestion>>) => user.keyboard('x')],
    ['Backspace', async ({ user }: Awaited<ReturnType<typeof streamingSuggestion>>) => user.keyboard('{Backspace}')],
    ['Escape', async ({ user }: Awaited<ReturnType<typeof streamingSuggestion>>) => user.keyboard('{Escape}')],
    ['a click that moves the cursor', async ({ user, textarea }: Awaited<ReturnType<typeof streamingSuggestion>>) =>
      user.pointer({ keys: '[MouseLeft]', target: textarea, offset: 2 })],
    ['a selection', async ({ user }: Awaited<ReturnType<typeof streamingSuggestion>>) => user.keyboard('{Shift>}{ArrowLeft}{/Shift}')],
    ['an IME composition', async ({ textarea }: Awaited<ReturnType<typeof streamingSuggestion>>) => fireEvent.compositionStart(textarea)],
    // Even a paste of the very text the suggestion begins with.
    ['a paste', async ({ user }: Awaited<ReturnType<typeof streamingSuggestion>>) => user.paste(' one')],
  ])('%s hides the suggestion at once and aborts its request; what it still sends is never shown', async (_, act) => {
    const view = await streamingSuggestion();
    await act(view);
    expect(ghost()).toBeNull();
    expect(nth(view.exchanges, 0).request.signal.aborted).toBe(true);

    // " two" was already on its way; it arrives after all. (Whether the aborted stream asks for
    // more depends on when the mock's copy of the body is collected, so no more are released.)
    await nth(view.exchanges, 0).release();
    expect(ghost()).toBeNull();
    expect(view.exchanges).toHaveLength(1);
  });

  it('a composition asks nothing until it ends; then the pause counts from its end', async () => {
    const exchanges = serve({ tokens: [' later'] });
    const { user, textarea } = await setupPaused();
    await user.type(textarea, 'We count');
    fireEvent.compositionStart(textarea);
    fireEvent.change(textarea, { target: { value: 'We count に' } });
    await advance(PAUSE_MS * 3);
    expect(exchanges).toHaveLength(0);
    fireEvent.compositionEnd(textarea);
    await advance(PAUSE_MS);
    expect(exchanges.map((exchange) => exchange.body.text)).toEqual(['We count に']);
  });

  it('a response for text that has since changed is never shown; the next pause asks for the new text', async () => {
    const exchanges = serve({ tokens: [' stale'], gated: true }, { tokens: [' fresh'] });
    const { user, textarea } = await setupPaused();
    await user.type(textarea, 'We count');
    await advance(PAUSE_MS);
    await user.keyboard('s');
    await nth(exchanges, 0).release();
    expect(ghost()).toBeNull();

    await advance(PAUSE_MS);
    await settle();
    expect(nth(exchanges, 1).body.text).toBe('We counts');
    expect(ghost()).toBe(' fresh');
  });

  it('typing what the suggestion begins with shrinks it, and asks nothing new for the new position', async () => {
    const exchanges = serve({ tokens: [' deep', ' nets'] }, { tokens: [' other'] });
    const { user, textarea } = await setupPaused();
    await user.type(textarea, 'We train');
    await advance(PAUSE_MS);
    await settle();
    await user.keyboard(' de');
    expect(ghost()).toBe('ep nets');
    await advance(PAUSE_MS * 3);
    expect(exchanges).toHaveLength(1);

    await user.keyboard('{Tab}');
    expect(textarea.value).toBe('We train deep nets');
  });

  it('typing what a streaming suggestion begins with keeps its request running; no second one is sent', async () => {
    const exchanges = serve({ tokens: [' one', ' two'], gated: true });
    const { user, textarea } = await setupPaused();
    await user.type(textarea, 'We count');
    await advance(PAUSE_MS);
    await nth(exchanges, 0).release();
    await user.keyboard(' o');
    expect(ghost()).toBe('ne');
    await advance(PAUSE_MS * 3);
    expect(exchanges).toHaveLength(1);
    expect(nth(exchanges, 0).request.signal.aborted).toBe(false);

    await nth(exchanges, 0).release(2);
    expect(ghost()).toBe('ne two');
    expect(textarea.value).toBe('We count o');
  });
});

describe('the server is respected', () => {
  it('a 429 waits out its Retry-After, with no error message', async () => {
    const exchanges = serve(overloaded('3'), { tokens: [' again'] });
    const { user, textarea } = await setupPaused();
    await user.type(textarea, 'We');
    await advance(PAUSE_MS);
    await settle();
    expect(exchanges).toHaveLength(1);

    await user.type(textarea, ' also');
    await advance(3000 + PAUSE_MS - 1);
    expect(exchanges).toHaveLength(1);
    await advance(1);
    await settle();
    expect(exchanges.map((exchange) => exchange.body.text)).toEqual(['We', 'We also']);
    expect(ghost()).toBe(' again');
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it('a server that is down gets no automatic requests until /health says it recovered', async () => {
    const exchanges = serve(unavailable(), { tokens: [' back'] });
    const { user, textarea } = await setupPaused();
    server.use(healthDown);
    await user.type(textarea, 'We');
    await advance(PAUSE_MS);
    await settle();
    expect(screen.getByText(/^Model unavailable: No model is loaded/)).toBeVisible();

    await user.type(textarea, ' still');
    await advance(HEALTH_RETRY_MS); // the health poll finds it down
    await user.type(textarea, ' down');
    await advance(PAUSE_MS);
    expect(exchanges).toHaveLength(1);

    server.use(healthOk);
    await advance(HEALTH_RETRY_MS);
    expect(screen.getByText(/^Model: /)).toBeVisible();
    await user.type(textarea, ' up');
    await advance(PAUSE_MS);
    await settle();
    expect(exchanges.map((exchange) => exchange.body.text)).toEqual(['We', 'We still down up']);
    expect(ghost()).toBe(' back');
    expect(screen.queryByRole('alert')).toBeNull();
  });
});

describe('the switch and the delay', () => {
  it('off: nothing is asked automatically, Ctrl+Enter asks for the long suggestion, and the choice is remembered', async () => {
    const exchanges = serve({ tokens: [' long'] });
    const { user, textarea, view } = await setupPaused();
    const toggle = screen.getByRole('switch', { name: 'Suggest while I pause' });
    expect(toggle).toBeChecked();
    toggle.focus();
    await user.keyboard(' ');
    expect(toggle).not.toBeChecked();

    await user.click(textarea);
    await user.type(textarea, 'We propose');
    await advance(PAUSE_MS * 10);
    expect(exchanges).toHaveLength(0);
    await user.keyboard('{Control>}{Enter}{/Control}');
    await settle();
    expect(nth(exchanges, 0).body).toEqual({ text: 'We propose', max_new_tokens: DEFAULT_SETTINGS.maxNewTokens, temperature: 0.8, top_p: 0.95, seed: null, n: 1, logprobs: true });
    expect(ghost()).toBe(' long');

    expect(JSON.parse(window.localStorage.getItem(STORAGE_KEYS.suggestOnPause)!)).toMatchObject({ enabled: false });
    view.unmount();
    render(<App />);
    expect(screen.getByRole('switch', { name: 'Suggest while I pause' })).not.toBeChecked();
    await user.click(screen.getByRole('button', { name: /reset settings/i }));
    expect(screen.getByRole('switch', { name: 'Suggest while I pause' })).toBeChecked();
  });

  it('the delay slider sets how long a pause is', async () => {
    const exchanges = serve({ tokens: [' x'] });
    const { user, textarea } = await setupPaused();
    fireEvent.change(screen.getByRole('slider', { name: 'Pause before suggesting (ms)' }), { target: { value: 1000 } });
    await user.click(textarea);
    await user.type(textarea, 'We');
    await advance(999);
    expect(exchanges).toHaveLength(0);
    await advance(1);
    expect(exchanges).toHaveLength(1);
  });
});

describe('screen readers', () => {
  it('hear an automatic suggestion once, when it is complete: not per token, not while typing through it', async () => {
    const exchanges = serve({ tokens: [' one', ' two'], gated: true });
    const { user, textarea } = await setupPaused();
    await user.type(textarea, 'We count');
    await advance(PAUSE_MS);
    const heard = [status()];
    await nth(exchanges, 0).release();
    heard.push(status());
    await nth(exchanges, 0).release();
    heard.push(status());
    await nth(exchanges, 0).release(); // done
    heard.push(status());
    await user.keyboard(' o');
    heard.push(status());
    const announcement = 'Suggestion: one two. Press Tab to accept, Escape to dismiss.';
    expect(heard.map((text) => text?.replace(/\s+/g, ' ').trim())).toEqual(['', '', '', announcement, announcement]);
    expect(screen.getByRole('status')).toHaveAttribute('aria-live', 'polite');
  });
});
