import { fireEvent, screen, waitFor } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { collectGarbage } from '@/testing/collect-garbage';
import { eventChunks, gatedStreamHandler, ghost, mirrorText, placeCaret, setup, streamingHandler } from '@/testing/editor-harness';
import { nth } from '@/testing/nth';
import { server } from '@/testing/server';

describe('suggestions stream in as ghost text at the cursor', () => {
  it('streams token by token, and Tab accepts the whole suggestion', async () => {
    const { handler, state, release } = gatedStreamHandler(eventChunks([[' a', ' simple', ' method']]));
    server.use(handler);
    const { user, textarea } = setup();
    await user.type(textarea, 'We propose');
    await user.click(screen.getByRole('button', { name: /^generate/i }));

    await release();
    await waitFor(() => expect(ghost()).toBe(' a'));
    expect(screen.getByRole('button', { name: /stop/i })).toBeEnabled();
    await release();
    await waitFor(() => expect(ghost()).toBe(' a simple'));
    await release(2);
    await waitFor(() => expect(ghost()).toBe(' a simple method'));
    await waitFor(() => expect(screen.getByRole('button', { name: /^generate/i })).toBeEnabled());
    expect(textarea.value).toBe('We propose');

    await user.keyboard('{Tab}');
    expect(textarea.value).toBe('We propose a simple method');
    expect(textarea).toHaveFocus();
    expect(ghost()).toBeNull();
    expect(nth(state.bodies, 0)).toMatchObject({ text: 'We propose', logprobs: true });
  });

  it('continues the text before the cursor and shows the ghost there, not at the end', async () => {
    const { handler, bodies } = streamingHandler([[' to', ' learn']]);
    server.use(handler);
    const { user, textarea } = setup();
    fireEvent.change(textarea, { target: { value: 'A title\n\nWe propose a method. It works.  ' } });
    placeCaret(textarea, 'A title\n\nWe propose a method'.length);

    await user.keyboard('{Control>}{Enter}{/Control}');
    await waitFor(() => expect(ghost()).toBe(' to learn'));
    expect(nth(bodies, 0).text).toBe('A title\n\nWe propose a method');
    expect(mirrorText()).toBe('A title\n\nWe propose a method to learn. It works.  ');

    await user.keyboard('{Tab}');
    expect(textarea.value).toBe('A title\n\nWe propose a method to learn. It works.  ');
    expect(textarea.selectionStart).toBe('A title\n\nWe propose a method to learn'.length);
  });

  it('Ctrl+→ takes one word at a time', async () => {
    server.use(streamingHandler([[' deep', ' neural', ' nets']]).handler);
    const { user, textarea } = setup();
    await user.type(textarea, 'We train');
    await user.keyboard('{Control>}{Enter}{/Control}');
    await waitFor(() => expect(ghost()).toBe(' deep neural nets'));

    await user.keyboard('{Control>}{ArrowRight}{/Control}');
    expect(textarea.value).toBe('We train deep');
    expect(ghost()).toBe(' neural nets');
    await user.keyboard('{Control>}{ArrowRight}{/Control}');
    expect(textarea.value).toBe('We train deep neural');
    await user.click(screen.getByRole('button', { name: /accept word/i }));
    expect(textarea.value).toBe('We train deep neural nets');
    expect(ghost()).toBeNull();
  });

  it.each([
    ['Escape', '{Escape}', 'We train'],
    ['typing something else', 'X', 'We trainX'],
  ])('%s dismisses the suggestion and leaves the draft as typed', async (_, keys, expected) => {
    server.use(streamingHandler([[' deep', ' nets']]).handler);
    const { user, textarea } = setup();
    await user.type(textarea, 'We train');
    await user.keyboard('{Control>}{Enter}{/Control}');
    await waitFor(() => expect(ghost()).toBe(' deep nets'));
    await user.keyboard(keys);
    expect(ghost()).toBeNull();
    expect(textarea.value).toBe(expected);
  });

  it('typing the start of the suggestion keeps the rest of it', async () => {
    server.use(streamingHandler([[' deep', ' nets']]).handler);
    const { user, textarea } = setup();
    await user.type(textarea, 'We train');
    await user.keyboard('{Control>}{Enter}{/Control}');
    await waitFor(() => expect(ghost()).toBe(' deep nets'));
    await user.keyboard(' de');
    expect(ghost()).toBe('ep nets');
    await user.keyboard('{Tab}');
    expect(textarea.value).toBe('We train deep nets');
  });

  it('moving the cursor away dismisses the suggestion', async () => {
    server.use(streamingHandler([[' deep']]).handler);
    const { user, textarea } = setup();
    await user.type(textarea, 'We train');
    await user.keyboard('{Control>}{Enter}{/Control}');
    await waitFor(() => expect(ghost()).toBe(' deep'));
    await user.keyboard('{ArrowLeft}');
    expect(ghost()).toBeNull();
    expect(textarea.value).toBe('We train');
  });
});

describe('alternatives', () => {
  it('asks for n, shows "2 of 3" and cycles with Alt+] / Alt+[ and the buttons', async () => {
    const { handler, bodies } = streamingHandler([[' first'], [' second'], [' third']]);
    server.use(handler);
    const { user, textarea } = setup();
    fireEvent.change(screen.getByRole('slider', { name: 'Alternatives' }), { target: { value: 3 } });
    await user.type(textarea, 'We');
    await user.keyboard('{Control>}{Enter}{/Control}');
    await waitFor(() => expect(ghost()).toBe(' first'));
    expect(nth(bodies, 0).n).toBe(3);

    const position = () => screen.getByTestId('alternative-position').textContent;
    expect(position()).toBe('1 of 3');
    await user.keyboard('{Alt>}]{/Alt}');
    expect([position(), ghost()]).toEqual(['2 of 3', ' second']);
    await user.keyboard('{Alt>}[[{/Alt}{Alt>}[[{/Alt}');
    expect([position(), ghost()]).toEqual(['3 of 3', ' third']);
    await user.click(screen.getByRole('button', { name: /next alternative/i }));
    expect([position(), ghost()]).toEqual(['1 of 3', ' first']);
    await user.click(screen.getByRole('button', { name: /previous alternative/i }));
    await user.click(textarea);
    placeCaret(textarea, 2);

    await user.keyboard('{Tab}');
    expect(textarea.value).toBe('We third');
  });
});

describe('stopping', () => {
  it.each([
    ['the Stop button', true],
    ['Escape', false],
  ])('%s aborts the request; a new generation works right after', async (_, viaButton) => {
    const chunks = eventChunks([[' one', ' two', ' three']]);
    const first = gatedStreamHandler(chunks);
    server.use(first.handler);
    const { user, textarea } = setup();
    await user.type(textarea, 'Count:');
    await user.keyboard('{Control>}{Enter}{/Control}');
    await first.release();
    await waitFor(() => expect(ghost()).toBe(' one'));

    // The worst moment for a collection: it once made the abort below vanish under CPU load.
    collectGarbage();
    if (viaButton) await user.click(screen.getByRole('button', { name: /stop/i }));
    else await user.keyboard('{Escape}');
    await waitFor(() => expect(first.state.aborted).toBe(true));
    expect(screen.getByRole('button', { name: /^generate/i })).toBeEnabled();
    // Stop keeps what streamed so far; Escape dismisses it.
    expect(ghost()).toBe(viaButton ? ' one' : null);

    server.use(streamingHandler([[' again']]).handler);
    await user.click(screen.getByRole('button', { name: /^generate/i }));
    await waitFor(() => expect(ghost()).toBe(' again'));
  });
});
