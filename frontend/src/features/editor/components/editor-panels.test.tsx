import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import { STORAGE_KEYS } from '@/config/app';
import { ghost, placeCaret, setup, streamingHandler } from '@/testing/editor-harness';
import { doneEvent, encodeEvents, server, sseResponse } from '@/testing/server';

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

describe('telling the writer what happened', () => {
  it('announces a finished suggestion to screen readers', async () => {
    server.use(streamingHandler([[' a', ' model']]).handler);
    const { user, textarea } = setup();
    await user.type(textarea, 'We train');
    await user.keyboard('{Control>}{Enter}{/Control}');
    await waitFor(() => expect(screen.getByRole('status')).toHaveTextContent('Suggestion: a model. Press Tab to accept, Escape to dismiss.'));
  });

  it('says so when the model suggests nothing', async () => {
    server.use(http.post('*/generate/stream', () => sseResponse(encodeEvents([doneEvent([''])]))));
    const { user, textarea } = setup();
    await user.type(textarea, 'The end.');
    await user.keyboard('{Control>}{Enter}{/Control}');
    expect(await screen.findByRole('alert')).toHaveTextContent('The model ended the text here and suggested nothing.');
    expect(ghost()).toBeNull();
    expect(textarea.value).toBe('The end.');
  });

  it('reuses the seed of the last suggestion for the next request', async () => {
    const { handler, bodies } = streamingHandler([[' x']]);
    server.use(handler);
    const { user, textarea } = setup();
    await user.type(textarea, 'We');
    await user.keyboard('{Control>}{Enter}{/Control}');
    await user.click(await screen.findByRole('button', { name: 'Reuse seed' }));
    expect(screen.getByRole('textbox', { name: 'Seed' })).toHaveValue('1234');
    await user.click(screen.getByRole('button', { name: /^generate/i }));
    await waitFor(() => expect(bodies).toHaveLength(2));
    expect(bodies.map((body) => body.seed)).toEqual([null, 1234]);
  });
});
