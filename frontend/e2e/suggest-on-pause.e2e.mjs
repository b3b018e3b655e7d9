/**
 * Suggest-on-pause end to end: a real Chromium typing into the editor served by the real server
 * (BASE_URL; SERVER_PID for the cancellation scenario). Run by tests/test_frontend_e2e.py with the
 * tiny test model; by hand: BASE_URL=http://127.0.0.1:8000 SERVER_PID=<gunicorn master> npm run e2e
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TEST_TIMEOUT, expectHealthy, freezeServer, ghost, metric, openEditor, setSlider, waitUntil } from './harness.mjs';

const PAUSE_MS = 400;
const KEY_DELAY_MS = 30; // a fast typist: well under the pause
const isStream = (request) => request.url().endsWith('/generate/stream');

/** Opens the editor with suggest-on-pause on and greedy sampling, so the tiny model always suggests the same. */
async function openGreedy() {
  const opened = await openEditor({ suggestOnPause: true, pauseMs: PAUSE_MS });
  await expectHealthy(opened.page);
  await setSlider(opened.page, 'Temperature', { home: true });
  await opened.editor.click();
  return opened;
}

/** The next /generate/stream request to end, answered or not (the editor stops reading once `done` arrived). */
function nextStreamEnd(page) {
  return new Promise((resolve) => {
    const ended = (request) => {
      if (!isStream(request)) return;
      page.off('requestfinished', ended);
      page.off('requestfailed', ended);
      resolve(request);
    };
    page.on('requestfinished', ended);
    page.on('requestfailed', ended);
  });
}

/** Types `text` key by key, then waits for the pause's request to be answered. */
async function typeAndPause(page, editor, text) {
  const ended = nextStreamEnd(page);
  await editor.pressSequentially(text, { delay: KEY_DELAY_MS });
  const request = await ended;
  assert.equal((await request.response())?.status(), 200);
}

describe('suggest on pause against the real server', () => {
  it('a pause in typing brings a suggestion without any shortcut; typing it shrinks it; Tab accepts it', { timeout: TEST_TIMEOUT }, async () => {
    const { context, page, editor, requests, pageErrors } = await openGreedy();
    await typeAndPause(page, editor, 'We');
    await typeAndPause(page, editor, ' count');
    await ghost(page).waitFor();
    const suggestion = await ghost(page).textContent();
    assert.ok(suggestion.length > 1, `a suggestion is shown: ${JSON.stringify(suggestion)}`);
    assert.deepEqual(
      requests.map((body) => body.text),
      ['We', 'We count'],
      'one request per pause, for the text before the cursor',
    );
    assert.deepEqual(requests.at(-1), {
      text: 'We count',
      max_new_tokens: 12,
      temperature: 0,
      top_p: 0.95,
      seed: null,
      n: 1,
      logprobs: true,
      stop: ['. ', '? ', '! ', '\n'],
    });

    // Typing the suggestion's first characters keeps the rest, and asks for nothing new.
    await editor.pressSequentially(suggestion.slice(0, 2), { delay: KEY_DELAY_MS });
    assert.equal(await ghost(page).textContent(), suggestion.slice(2));
    await page.waitForTimeout(PAUSE_MS * 3);
    assert.equal(requests.length, 2, 'no second request for a position that has its suggestion');

    await editor.press('Tab');
    assert.equal(await editor.inputValue(), `We count${suggestion}`);
    assert.equal(await ghost(page).count(), 0);
    assert.deepEqual(pageErrors, []);
    await context.close();
  });

  it('typing over a suggestion hides it at once and stops its generation on the server', { timeout: TEST_TIMEOUT }, async () => {
    const { context, page, editor, requests } = await openGreedy();
    await typeAndPause(page, editor, 'We count');
    await ghost(page).waitFor();
    const suggestion = await ghost(page).textContent();
    const other = suggestion.startsWith('Q') ? 'Z' : 'Q';
    await editor.press(other);
    assert.equal(await ghost(page).count(), 0, 'a keystroke that does not follow the suggestion dismisses it');

    // The tiny model writes 12 tokens in about 10 ms, faster than any keystroke: hold the server
    // so that the next pause's request is still unanswered when the writer types over it.
    const failed = [];
    page.on('requestfailed', (request) => failed.push([request.url(), request.failure()?.errorText]));
    const cancelledBefore = await metric('autocomplete_streams_cancelled_total');
    const resume = freezeServer();
    try {
      const sent = page.waitForRequest(isStream);
      await editor.pressSequentially(' and', { delay: KEY_DELAY_MS });
      await sent;
      await editor.press('s');
      await waitUntil(async () => failed.some(([url, error]) => url.endsWith('/generate/stream') && /ABORTED/.test(error)), 'the browser aborts the request');
    } finally {
      resume();
    }
    assert.equal(requests.at(-1).text, `We count${other} and`);
    await waitUntil(async () => (await metric('autocomplete_streams_cancelled_total')) === cancelledBefore + 1, 'the server counts the generation as cancelled');
    await waitUntil(async () => (await metric('autocomplete_generations_in_flight')) === 0, 'the server is generating nothing');
    await context.close();
  });
});
