/**
 * End-to-end scenarios of the editor in a real Chromium against a real server (BASE_URL).
 * Run by tests/test_frontend_e2e.py, which starts gunicorn with the tiny test model; by hand:
 *   BASE_URL=http://127.0.0.1:8000 node --test e2e/editor.e2e.mjs
 * SCREENSHOT_PATH (default <repo>/artifacts/e2e/editor.png) is where the editor-with-a-suggestion picture goes.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, it } from 'node:test';
import {
  SCREENSHOT_PATH,
  TEST_TIMEOUT,
  expectHealthy,
  generateAndWait,
  generateButton,
  ghost,
  isFocused,
  lastRun,
  metric,
  openEditor,
  setSlider,
  waitForGenerateEnabled,
  waitUntil,
} from './harness.mjs';

describe('the abstract editor against the real server', () => {
  it('streams a suggestion token by token at the cursor; Tab accepts it; the draft survives a reload', { timeout: TEST_TIMEOUT }, async () => {
    const { context, page, editor, pageErrors, requests } = await openEditor();
    await expectHealthy(page);
    // The longest suggestion: even on a busy machine its stream spans many renders.
    await setSlider(page, 'Suggestion length (tokens)', { end: true }); // 256 tokens
    await editor.fill('We propose a method to');

    // Record every length the ghost text goes through, to see it grow rather than appear at once.
    await page.evaluate(() => {
      window.ghostLengths = [];
      new MutationObserver(() => {
        const text = document.querySelector('[data-testid="ghost-text"]')?.textContent;
        if (text && window.ghostLengths.at(-1) !== text.length) window.ghostLengths.push(text.length);
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    await generateAndWait(page);
    const suggestion = await ghost(page).textContent();
    assert.ok(suggestion.length > 0, 'a suggestion is shown');
    const lengths = await page.evaluate(() => window.ghostLengths);
    assert.ok(lengths.length >= 3, `the ghost text grew in steps as tokens streamed in: ${lengths}`);
    assert.deepEqual(requests.at(-1), { text: 'We propose a method to', max_new_tokens: 256, temperature: 0.8, top_p: 0.95, seed: null, n: 1, logprobs: true });
    assert.equal(await editor.inputValue(), 'We propose a method to', 'the suggestion is not in the draft until accepted');

    await editor.press('Tab');
    assert.equal(await editor.inputValue(), `We propose a method to${suggestion}`);
    assert.equal(await ghost(page).count(), 0);
    assert.ok(await isFocused(editor), 'the textarea keeps the focus');

    await page.reload();
    await page.getByRole('textbox', { name: 'Abstract draft' }).waitFor();
    assert.equal(await page.getByRole('textbox', { name: 'Abstract draft' }).inputValue(), `We propose a method to${suggestion}`);
    assert.deepEqual(pageErrors, []);
    await context.close();
  });

  it('puts the ghost text at the cursor in the middle of the text, lined up with the textarea', { timeout: TEST_TIMEOUT }, async () => {
    const { context, page, editor, requests } = await openEditor({ viewport: { width: 900, height: 900 } });
    const before = 'Learning to write abstracts\n\nWe study how language models continue scientific text and';
    const afterText = ' Long words wrap across several lines here so that the mirror must wrap exactly like the textarea does.';
    await editor.fill(before + afterText);
    await editor.evaluate((element, at) => element.setSelectionRange(at, at), before.length);
    await generateAndWait(page);
    const suggestion = await ghost(page).textContent();
    assert.equal(requests.at(-1).text, before, 'only the text before the cursor is sent');
    const mirror = await page.getByTestId('editor-mirror').textContent();
    assert.equal(mirror.replace('\u200b', ''), before + suggestion + afterText);

    // Wrapping agrees: the textarea, sized by the mirror, has nothing to scroll, and the text
    // after the ghost starts where the ghost ends.
    const layout = await editor.evaluate((element) => ({ scroll: element.scrollHeight, client: element.clientHeight }));
    assert.ok(layout.scroll <= layout.client + 1, `textarea overflows its mirror: ${JSON.stringify(layout)}`);

    await editor.press('Tab');
    assert.equal(await editor.inputValue(), before + suggestion + afterText);
    const caret = await editor.evaluate((element) => element.selectionStart);
    assert.equal(caret, before.length + suggestion.length, 'the caret sits after the accepted text');

    // Pixel for pixel: the textarea's own text, painted in red, lands exactly where the mirror paints it.
    const differing = await compareLayers(page);
    assert.ok(differing < 20, `${differing} pixels differ between the textarea's text and the mirror's`);
    await context.close();
  });

  it('sends what the controls say and cycles alternatives', { timeout: TEST_TIMEOUT }, async () => {
    const { context, page, editor, requests } = await openEditor();
    await setSlider(page, 'Suggestion length (tokens)', { home: true, steps: 9 }); // 10
    await setSlider(page, 'Temperature', { home: true }); // 0: greedy
    await setSlider(page, 'Top-p', { home: true, steps: 5 }); // 0.30
    await setSlider(page, 'Alternatives', { home: true, steps: 1 }); // 2
    await page.getByRole('textbox', { name: 'Seed' }).fill('7');
    await editor.fill('Deep learning');
    await generateAndWait(page);
    assert.deepEqual(requests.at(-1), { text: 'Deep learning', max_new_tokens: 10, temperature: 0, top_p: 0.3, seed: 7, n: 2, logprobs: true });
    assert.match(await lastRun(page).textContent(), /^Last suggestion: \d+ tokens in \d+\.\d\d s \(\d+\.\d tokens\/s\)/);

    const position = page.getByTestId('alternative-position');
    assert.equal(await position.textContent(), '1 of 2');
    const first = await ghost(page).textContent();
    await editor.press('Alt+BracketRight');
    assert.equal(await position.textContent(), '2 of 2');
    await editor.press('Alt+BracketLeft');
    assert.equal(await position.textContent(), '1 of 2');
    assert.equal(await ghost(page).textContent(), first);

    // Ctrl+→ takes the next word (its leading spaces + one run of non-space) and leaves the rest.
    const word = (/^\s*\S+/.exec(first) ?? /^\s+/.exec(first))[0];
    await editor.press('Control+ArrowRight');
    assert.equal(await editor.inputValue(), `Deep learning${word}`);
    assert.equal(await editor.evaluate((element) => element.selectionStart), `Deep learning${word}`.length);
    if (word !== first) assert.equal(await ghost(page).textContent(), first.slice(word.length));

    // The settings persist across a reload.
    await page.reload();
    assert.equal(await page.getByRole('slider', { name: 'Top-p' }).inputValue(), '0.3');
    assert.equal(await page.getByRole('textbox', { name: 'Seed' }).inputValue(), '7');
    await context.close();
  });

  it('Stop cancels the generation on the server; a new one works right after', { timeout: TEST_TIMEOUT }, async () => {
    const { context, page, editor } = await openEditor();
    await setSlider(page, 'Suggestion length (tokens)', { end: true }); // 256
    await setSlider(page, 'Alternatives', { end: true }); // 4
    await editor.fill('We');
    const cancelledBefore = await metric('autocomplete_streams_cancelled_total');
    const failed = [];
    page.on('requestfailed', (request) => failed.push([request.url(), request.failure()?.errorText]));

    // Press Stop the moment the first token shows: the tiny model writes 256 tokens in a blink.
    await page.evaluate(() => {
      const observer = new MutationObserver(() => {
        if (document.querySelector('[data-testid="ghost-text"]')) {
          observer.disconnect();
          [...document.querySelectorAll('button')].find((button) => button.textContent === 'Stop').click();
          window.stopClicked = true;
        }
      });
      observer.observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    await page.getByRole('button', { name: /^Generate/ }).click();
    await page.waitForFunction(() => window.stopClicked === true);
    await waitForGenerateEnabled(page);
    assert.ok((await ghost(page).textContent()).length > 0, 'Stop keeps the text that had arrived');

    assert.equal(await lastRun(page).count(), 0, 'the done event never arrived');
    assert.ok(failed.some(([url, error]) => url.endsWith('/generate/stream') && /ABORTED/.test(error)), `fetch aborted: ${JSON.stringify(failed)}`);
    await waitUntil(async () => (await metric('autocomplete_streams_cancelled_total')) === cancelledBefore + 1, 'the server counts the stream as cancelled');
    await waitUntil(async () => (await metric('autocomplete_generations_in_flight')) === 0, 'the server is generating nothing');

    await setSlider(page, 'Suggestion length (tokens)', { home: true, steps: 4 });
    await editor.focus();
    await generateAndWait(page);
    assert.equal(await lastRun(page).count(), 1, 'the next generation finishes');
    await context.close();
  });

  it('shows the server message when it rejects the input, and leaves the draft alone', { timeout: TEST_TIMEOUT }, async () => {
    const { context, page, editor } = await openEditor();
    const tooLong = 'word '.repeat(4001); // 20,005 characters, over the API's 20,000
    await editor.fill(tooLong);
    await page.getByRole('button', { name: /^Generate/ }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    const message = await alert.textContent();
    assert.match(message, /20000|20,000/, `the 422 message names the bound: ${message}`);
    assert.match(message, /text/, `the 422 message names the field: ${message}`);
    assert.equal(await editor.inputValue(), tooLong, 'the draft is unchanged, trailing space included');
    assert.equal(await generateButton(page).isEnabled(), true);
    await context.close();
  });

  it('works at phone width and follows a dark system theme', { timeout: TEST_TIMEOUT }, async () => {
    const { context, page, editor } = await openEditor({ viewport: { width: 375, height: 740 }, colorScheme: 'dark' });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no sideways scrolling at 375 px (overflow ${overflow}px)`);
    // The page and the editor itself (whose frame is the textarea's parent) both turn dark.
    for (const [what, color] of [
      ['page', await page.evaluate(() => getComputedStyle(document.body).backgroundColor)],
      ['editor', await editor.evaluate((element) => getComputedStyle(element.parentElement).backgroundColor)],
    ]) {
      const [r, g, b] = color.match(/\d+/g).map(Number);
      assert.ok(r + g + b < 150, `dark ${what} background in dark mode, got ${color}`);
    }
    await editor.fill('We propose');
    await generateAndWait(page);
    assert.ok((await ghost(page).textContent()).length > 0);
    await context.close();
  });

  it('confidence view shades accepted tokens; screenshot of the editor with a suggestion', { timeout: TEST_TIMEOUT }, async () => {
    const { context, page, editor } = await openEditor({ viewport: { width: 1280, height: 760 } });
    await setSlider(page, 'Suggestion length (tokens)', { home: true, steps: 29 });
    await editor.fill('Sparse Mixture-of-Experts for Efficient Abstract Writing\n\nWe propose a method to');
    await generateAndWait(page);
    await editor.press('Tab');
    await page.getByRole('switch', { name: 'Confidence view' }).check();
    const shaded = page.getByTestId('editor-mirror').locator('[data-model-token]');
    assert.ok((await shaded.count()) > 0, 'accepted tokens are shaded');
    const probability = Number(await shaded.first().getAttribute('data-probability'));
    assert.ok(probability >= 0 && probability <= 1);

    // Hovering a shaded token shows its probability.
    const box = await shaded.first().boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    assert.match(await page.getByRole('tooltip').textContent(), /% likely/);
    await page.mouse.move(0, 0);

    await editor.press('End');
    await editor.pressSequentially(' Our');
    await generateAndWait(page);
    assert.ok((await ghost(page).textContent()).length > 0);
    mkdirSync(dirname(SCREENSHOT_PATH), { recursive: true });
    await page.screenshot({ path: SCREENSHOT_PATH });
    await context.close();
  });
});

/** Screenshots the editor once with only the textarea's text visible, once with only the mirror's; counts differing pixels. */
async function compareLayers(page) {
  const frame = page.getByTestId('editor-mirror').locator('..');
  const shots = [];
  for (const [textarea, mirror] of [
    ['rgb(200, 0, 0)', 'transparent'],
    ['transparent', 'rgb(200, 0, 0)'],
  ]) {
    const style = await page.addStyleTag({
      content: `textarea { color: ${textarea} !important; caret-color: transparent !important; }
                [data-testid="editor-mirror"] { color: ${mirror} !important; }`,
    });
    shots.push((await frame.screenshot()).toString('base64'));
    await style.evaluate((element) => element.remove());
  }
  return page.evaluate(async ([a, b]) => {
    const pixels = async (base64) => {
      const image = new Image();
      image.src = `data:image/png;base64,${base64}`;
      await image.decode();
      const canvas = new OffscreenCanvas(image.width, image.height);
      const context = canvas.getContext('2d');
      context.drawImage(image, 0, 0);
      return context.getImageData(0, 0, image.width, image.height).data;
    };
    const [first, second] = [await pixels(a), await pixels(b)];
    if (first.length !== second.length) return Infinity;
    let differing = 0;
    for (let i = 0; i < first.length; i += 4) {
      const delta = Math.max(...[0, 1, 2].map((c) => Math.abs(first[i + c] - second[i + c])));
      if (delta > 60) differing += 1;
    }
    return differing;
  }, shots);
}
