import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import { App } from '@/app/App';
import { STORAGE_KEYS } from '@/config/app';
import { chunkedStream, completionEvents, doneEvent, encodeEvents, server, sseResponse } from '@/testing/server';

type Body = Record<string, unknown>;

/** A stream whose chunks are released one at a time by the test; records the request and its abort. */
function gatedStreamHandler(chunks: string[]) {
  const state = { bodies: [] as Body[], aborted: false, cancelled: false, waiting: [] as (() => void)[] };
  const handler = http.post('*/generate/stream', async ({ request }) => {
    state.bodies.push((await request.json()) as Body);
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
function eventChunks(alternatives: string[][], logprob = -0.5): string[] {
  return completionEvents(alternatives, logprob).map((event) => encodeEvents([event]));
}

/** A handler that answers the whole stream at once and records each request body. */
function streamingHandler(alternatives: string[][], logprob = -0.5) {
  const bodies: Body[] = [];
  const handler = http.post('*/generate/stream', async ({ request }) => {
    bodies.push((await request.json()) as Body);
    return sseResponse(encodeEvents(completionEvents(alternatives, logprob)));
  });
  return { handler, bodies };
}

function setup() {
  const user = userEvent.setup();
  const view = render(<App />);
  const textarea = screen.getByRole('textbox', { name: 'Abstract draft' }) as HTMLTextAreaElement;
  return { user, textarea, view };
}

const ghost = () => screen.queryByTestId('ghost-text')?.textContent ?? null;
const mirrorText = () => screen.getByTestId('editor-mirror').textContent?.replace('\u200b', '');

function placeCaret(textarea: HTMLTextAreaElement, position: number) {
  textarea.focus();
  textarea.setSelectionRange(position, position);
  fireEvent.select(textarea);
}

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
    expect(state.bodies[0]).toMatchObject({ text: 'We propose', logprobs: true });
  });

  it('continues the text before the cursor and shows the ghost there, not at the end', async () => {
    const { handler, bodies } = streamingHandler([[' to', ' learn']]);
    server.use(handler);
    const { user, textarea } = setup();
    fireEvent.change(textarea, { target: { value: 'A title\n\nWe propose a method. It works.  ' } });
    placeCaret(textarea, 'A title\n\nWe propose a method'.length);

    await user.keyboard('{Control>}{Enter}{/Control}');
    await waitFor(() => expect(ghost()).toBe(' to learn'));
    expect(bodies[0].text).toBe('A title\n\nWe propose a method');
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
    expect(bodies[0].n).toBe(3);

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

describe('errors', () => {
  it.each([
    [422, { error: { type: 'validation', field: 'text', message: 'text must be at most 20000 characters, got 20001' } }, {}, 'text must be at most 20000 characters, got 20001'],
    [429, { error: { type: 'overloaded', message: 'The server is busy.' } }, { 'Retry-After': '2' }, 'The server is busy. Try again in 2 s.'],
    [503, { error: { type: 'unavailable', message: 'No model is loaded.' } }, {}, 'No model is loaded.'],
  ])('shows the server message of a %i and keeps the draft exactly', async (status, body, headers, message) => {
    server.use(http.post('*/generate/stream', () => HttpResponse.json(body, { status, headers })));
    const { user, textarea } = setup();
    const draft = 'We propose  \n\n';
    fireEvent.change(textarea, { target: { value: draft } });
    await user.click(screen.getByRole('button', { name: /^generate/i }));

    expect(await screen.findByRole('alert')).toHaveTextContent(message);
    expect(textarea.value).toBe(draft);
    expect(screen.getByRole('button', { name: /^generate/i })).toBeEnabled();
    expect(JSON.parse(window.localStorage.getItem(STORAGE_KEYS.draft)!).text).toBe(draft);
  });

  it('says so when the server cannot be reached', async () => {
    server.use(http.post('*/generate/stream', () => HttpResponse.error()));
    const { user, textarea } = setup();
    await user.type(textarea, 'We');
    await user.click(screen.getByRole('button', { name: /^generate/i }));
    expect(await screen.findByRole('alert')).toHaveTextContent('Cannot reach the server');
    expect(screen.getByRole('button', { name: /^generate/i })).toBeEnabled();
  });

  it('shows an error event sent mid-stream and keeps what had streamed', async () => {
    const body = encodeEvents([
      { event: 'token', data: { index: 0, text: ' partial', logprob: -1 } },
      { event: 'error', data: { error: { type: 'unavailable', message: 'generation failed: out of memory' } } },
    ]);
    server.use(http.post('*/generate/stream', () => sseResponse(body)));
    const { user, textarea } = setup();
    await user.type(textarea, 'We');
    await user.keyboard('{Control>}{Enter}{/Control}');
    expect(await screen.findByRole('alert')).toHaveTextContent('generation failed: out of memory');
    expect(ghost()).toBe(' partial');
    expect(textarea.value).toBe('We');
    expect(screen.getByRole('button', { name: /^generate/i })).toBeEnabled();
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

describe('settings', () => {
  it('sends what the controls say, persists it, and reset restores the defaults', async () => {
    const { handler, bodies } = streamingHandler([[' x']]);
    server.use(handler);
    const { user, textarea, view } = setup();
    fireEvent.change(screen.getByRole('slider', { name: 'Suggestion length (tokens)' }), { target: { value: 128 } });
    fireEvent.change(screen.getByRole('slider', { name: 'Temperature' }), { target: { value: 0 } });
    fireEvent.change(screen.getByRole('slider', { name: 'Top-p' }), { target: { value: 0.5 } });
    fireEvent.change(screen.getByRole('slider', { name: 'Alternatives' }), { target: { value: 2 } });
    await user.type(screen.getByRole('textbox', { name: 'Seed' }), '42');
    await user.type(textarea, 'We');
    await user.keyboard('{Control>}{Enter}{/Control}');
    await waitFor(() => expect(bodies).toHaveLength(1));
    expect(bodies[0]).toEqual({ text: 'We', max_new_tokens: 128, temperature: 0, top_p: 0.5, seed: 42, n: 2, logprobs: true });

    view.unmount();
    setup();
    expect(screen.getByRole('slider', { name: 'Temperature' })).toHaveValue('0');
    expect(screen.getByRole('textbox', { name: 'Seed' })).toHaveValue('42');

    await user.click(screen.getByRole('button', { name: /reset settings/i }));
    expect(screen.getByRole('textbox', { name: 'Seed' })).toHaveValue('');
    await user.keyboard('{Control>}{Enter}{/Control}');
    await waitFor(() => expect(bodies).toHaveLength(2));
    expect(bodies[1]).toEqual({ text: 'We', max_new_tokens: 40, temperature: 0.8, top_p: 0.95, seed: null, n: 1, logprobs: true });
  });

  it('rejects a seed that is not a whole number without sending it', async () => {
    const { user } = setup();
    await user.type(screen.getByRole('textbox', { name: 'Seed' }), '1.5');
    expect(screen.getByText(/Seed must be a whole number/)).toBeVisible();
    expect(JSON.parse(window.localStorage.getItem(STORAGE_KEYS.settings)!).seed).toBe(1);
  });

  it('every control has a tooltip that explains it', async () => {
    const { user } = setup();
    for (const name of ['suggestion length (tokens)', 'temperature', 'top-p', 'alternatives', 'seed']) {
      await user.hover(screen.getByRole('button', { name: `About ${name}` }));
      expect(await screen.findByRole('tooltip')).toHaveTextContent(/\w{4,}.*\w{4,}/);
      await user.unhover(screen.getByRole('button', { name: `About ${name}` }));
      await waitFor(() => expect(screen.queryByRole('tooltip')).toBeNull());
    }
  });
});

describe('draft and status', () => {
  it('survives a reload, and ignores corrupt stored data', async () => {
    const { user, textarea, view } = setup();
    await user.type(textarea, 'Persisted draft ');
    view.unmount();
    const reloaded = setup();
    expect(reloaded.textarea.value).toBe('Persisted draft ');
    reloaded.view.unmount();
    window.localStorage.setItem(STORAGE_KEYS.draft, '{not json');
    window.localStorage.setItem(STORAGE_KEYS.settings, JSON.stringify({ temperature: 'hot', topP: 7, maxNewTokens: 99 }));
    expect(setup().textarea.value).toBe('');
    expect(screen.getByRole('slider', { name: 'Temperature' })).toHaveValue('0.8');
    expect(screen.getByRole('slider', { name: 'Suggestion length (tokens)' })).toHaveValue('99');
  });

  it('counts words and characters, shows the model and the last speed', async () => {
    server.use(
      http.post('*/generate/stream', () =>
        sseResponse(encodeEvents([{ event: 'token', data: { index: 0, text: ' x', logprob: -1 } }, doneEvent([' x'], { usage: { prompt_tokens: 2, completion_tokens: 8 } })])),
      ),
    );
    const { user, textarea } = setup();
    await user.type(textarea, 'Two words');
    const status = screen.getByRole('contentinfo', { name: 'Status' });
    expect(status).toHaveTextContent('2 words · 9 characters');
    expect(await within(status).findByText(/Model: distilgpt2-arxiv \(int8, 81\.9M parameters\)/)).toBeVisible();
    await user.keyboard('{Control>}{Enter}{/Control}');
    expect(await within(status).findByTestId('last-run')).toHaveTextContent('8 tokens in 0.20 s (40.0 tokens/s)');
  });

  it('reports an unavailable model with the reason', async () => {
    server.use(http.get('*/health', () => HttpResponse.json({ status: 'loading', reason: 'model is loading' }, { status: 503 })));
    setup();
    expect(await screen.findByText('Model unavailable: model is loading')).toBeVisible();
  });
});

describe('confidence view', () => {
  it('shades accepted model tokens by probability and drops a span the writer edits', async () => {
    server.use(
      http.post('*/generate/stream', () =>
        sseResponse(
          encodeEvents([
            { event: 'token', data: { index: 0, text: ' sure', logprob: Math.log(0.9) } },
            { event: 'token', data: { index: 0, text: ' guess', logprob: Math.log(0.05) } },
            doneEvent([' sure guess']),
          ]),
        ),
      ),
    );
    const { user, textarea } = setup();
    await user.type(textarea, 'We');
    await user.keyboard('{Control>}{Enter}{/Control}');
    await waitFor(() => expect(ghost()).toBe(' sure guess'));
    await user.keyboard('{Tab}');
    await user.click(screen.getByRole('switch', { name: 'Confidence view' }));

    const tokens = () =>
      [...screen.getByTestId('editor-mirror').querySelectorAll<HTMLElement>('[data-model-token]')].map((el) => [
        el.textContent,
        Number(el.dataset.probability).toFixed(2),
      ]);
    expect(tokens()).toEqual([
      [' sure', '0.90'],
      [' guess', '0.05'],
    ]);
    expect(screen.getByTestId('confidence-legend')).toHaveTextContent('2 model tokens, 48% likely on average, 1 below 10%');

    // Type inside " guess": that token is the writer's now; " sure" keeps its shading.
    placeCaret(textarea, 'We sure gu'.length);
    await user.keyboard('X');
    expect(textarea.value).toBe('We sure guXess');
    expect(tokens()).toEqual([[' sure', '0.90']]);
  });
});
