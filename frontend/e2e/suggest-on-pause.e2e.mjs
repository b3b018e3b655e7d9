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

/**
 * The end (answered or not: the editor stops reading once `done` arrived) of the next
 * /generate/stream request that asks to continue `text`. On a busy machine the browser may stall
 * between keys for longer than the pause and ask for a shorter text first; those are let pass.
 */
function streamEnd(page, text) {
  return new Promise((resolve) => {
    const ended = (request) => {
      if (!isStream(request) || request.postDataJSON()?.text !== text) return;
      page.off('requestfinished', ended);
      page.off('requestfailed', ended);
      resolve(request);
    };
    page.on('requestfinished', ended);
    page.on('requestfailed', ended);
  });
}

/** Types `keys` one by one, then waits until the pause's request for the whole draft is answered. */
async function typeAndPause(page, editor, keys) {
  const draft = (await editor.inputValue()) + keys;
  const ended = streamEnd(page, draft);
  await editor.pressSequentially(keys, { delay: KEY_DELAY_MS });
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
    assert.ok(requests.every((body) => 'We count'.startsWith(body.text)), 'each pause asks to continue the text before the cursor');
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
    const asked = requests.length;
    await editor.pressSequentially(suggestion.slice(0, 2), { delay: KEY_DELAY_MS });
    assert.equal(await ghost(page).textContent(), suggestion.slice(2));
    await page.waitForTimeout(PAUSE_MS * 3);
    assert.equal(requests.length, asked, 'no second request for a position that has its suggestion');

    await editor.press('Tab');
    assert.equal(await editor.inputValue(), `We count${suggestion}`);
    assert.equal(await ghost(page).count(), 0);
    assert.deepEqual(pageErrors, []);
    await context.close();
  });

  it('typing over a suggestion hides it at once and stops its generation on the server', { timeout: TEST_TIMEOUT }, async () => {
    const { context, page, editor } = await openGreedy();
    await typeAndPause(page, editor, 'We count');
    await ghost(page).waitFor();
    const suggestion = await ghost(page).textContent();
    const other = suggestion.startsWith('Q') ? 'Z' : 'Q';
    // Whether the ghost is there right after the keystroke, well before the next pause can end.
    await page.evaluate(() =>
      document.addEventListener('input', () => setTimeout(() => (window.ghostAfterKey = !!document.querySelector('[data-testid="ghost-text"]'))), { once: true }),
    );
    await typeAndPause(page, editor, other);
    assert.equal(await page.evaluate(() => window.ghostAfterKey), false, 'a keystroke that does not follow the suggestion hides it at once');

    // The tiny model writes 12 tokens in about 10 ms, faster than any keystroke: hold the server
    // so that the next pause's request is still unanswered when the writer types over it.
    const aborted = [];
    page.on('requestfailed', (request) => isStream(request) && /ABORTED/.test(request.failure()?.errorText) && aborted.push(request.postDataJSON().text));
    const cancelledBefore = await metric('autocomplete_streams_cancelled_total');
    const resume = freezeServer();
    try {
      const sent = page.waitForRequest((request) => isStream(request) && request.postDataJSON()?.text === `We count${other} and`);
      await editor.pressSequentially(' and', { delay: KEY_DELAY_MS });
      await sent;
      await editor.press('s');
      await waitUntil(async () => aborted.includes(`We count${other} and`), 'the browser aborts the request it typed over');
    } finally {
      resume();
    }
    // Every request typed over while the server was held (one, unless the browser stalled between keys) is cancelled there.
    await waitUntil(async () => (await metric('autocomplete_streams_cancelled_total')) === cancelledBefore + aborted.length, 'the server counts the generation as cancelled');
    await waitUntil(async () => (await metric('autocomplete_generations_in_flight')) === 0, 'the server is generating nothing');
    await context.close();
  });
});
