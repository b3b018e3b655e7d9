/**
 * Measures suggest-on-pause in a real Chromium against a running server (not a test):
 *   1. latency: from the last keystroke to the first suggested character on screen (median of N);
 *   2. load: how many generation requests scripted typing sends in 60 s, with the feature off and
 *      with each pause delay given.
 *   BASE_URL=http://127.0.0.1:8000 node e2e/measure-pause.mjs [--runs 20] [--seconds 60] [--delays 250,400,700]
 * The typing is a seeded schedule (see `typingSchedule`), so every configuration types the same
 * keys at the same moments. Prints one JSON object.
 */
import { parseArgs } from 'node:util';
import { launchChromium } from './browser.mjs';

const BASE_URL = process.env.BASE_URL;
if (!BASE_URL) throw new Error('Set BASE_URL to the server to measure, e.g. http://127.0.0.1:8000');
const PAUSE_KEY = 'abstract-autocomplete:suggest-on-pause:v1';
const { values: options } = parseArgs({
  options: { runs: { type: 'string', default: '20' }, seconds: { type: 'string', default: '60' }, delays: { type: 'string', default: '250,400,700' } },
});

const OPENINGS = [
  'We propose a method to',
  'In this paper, we',
  'Deep neural networks have',
  'Large language models are',
  'We study the problem of',
  'Recent work has shown that',
  'Our experiments show that',
  'We introduce a new',
];

const ABSTRACT =
  'We propose a simple method to learn sparse representations of text. Our approach combines contrastive training with a small ' +
  'memory of past examples, and it needs no labels. We show that the representations transfer to classification and retrieval ' +
  'tasks, where they match larger models at a fraction of the cost. We also study when the method fails and why. Code and data ' +
  'are available online. Finally, we discuss how the same idea applies to images and speech, and we outline open problems.';

/** Seeded PRNG (mulberry32), so the typing is the same in every configuration. */
function random(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Milliseconds to wait before each character of `text`: log-normal key intervals (median 160 ms
 * inside a word, 230 ms before a new word, about 60 words a minute), 0.9 s after a sentence, and a
 * 1.2-3 s thinking pause before about one word in eight.
 */
function typingSchedule(text, seed = 7) {
  const next = random(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  const logNormal = (median, sigma) => median * Math.exp(sigma * normal());
  return [...text].map((char, i) => {
    const previous = text[i - 1] ?? ' ';
    if (/[.!?]/.test(text[i - 2] ?? '') && previous === ' ') return logNormal(900, 0.3);
    if (previous === ' ') return next() < 0.125 ? 1200 + 1800 * next() : logNormal(230, 0.35);
    return logNormal(160, 0.35);
  });
}

async function openEditor(browser, pause) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  await context.addInitScript(([key, value]) => window.localStorage.setItem(key, value), [PAUSE_KEY, JSON.stringify(pause)]);
  const page = await context.newPage();
  await page.goto(BASE_URL);
  await page.getByText(/^Model: /).waitFor();
  const editor = page.getByRole('textbox', { name: 'Abstract draft' });
  await editor.click();
  // In the page: when the last keystroke happened, and when the ghost text first showed a character.
  await page.evaluate(() => {
    window.timing = { lastInput: 0, firstGhost: 0 };
    document.addEventListener('input', () => {
      window.timing = { lastInput: performance.now(), firstGhost: 0 };
    });
    new MutationObserver(() => {
      const ghost = document.querySelector('[data-testid="ghost-text"]');
      if (ghost?.textContent && !window.timing.firstGhost) window.timing.firstGhost = performance.now();
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  return { context, page, editor };
}

/** The server's count of generations stopped because the client left (typing over a suggestion). */
async function cancelledOnServer() {
  const text = await (await fetch(`${BASE_URL}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('autocomplete_streams_cancelled_total'));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
};

/** Types an opening, stops, and times the first suggested character; openings the model answers with nothing are skipped. */
async function measureLatency(browser, runs, delayMs) {
  const { context, page, editor } = await openEditor(browser, { enabled: true, delayMs });
  const latencies = [];
  let empty = 0;
  for (let attempt = 0; latencies.length < runs && attempt < runs * 3; attempt += 1) {
    await editor.fill('');
    await editor.pressSequentially(OPENINGS[attempt % OPENINGS.length], { delay: 40 });
    const shown = await page
      .waitForFunction(() => window.timing.firstGhost > 0, null, { timeout: 10_000 })
      .then(() => true, () => false);
    if (!shown) {
      empty += 1;
      continue;
    }
    latencies.push(await page.evaluate(() => window.timing.firstGhost - window.timing.lastInput));
    await editor.press('Escape');
  }
  await context.close();
  const round = (ms) => Math.round(ms);
  return { delayMs, runs: latencies.length, emptySuggestions: empty, medianMs: round(median(latencies)), minMs: round(Math.min(...latencies)), maxMs: round(Math.max(...latencies)), latencies: latencies.map(round) };
}

/** Types the abstract on the schedule for `seconds` and counts what the editor asked the server. */
async function measureTyping(browser, seconds, pause) {
  const { context, page } = await openEditor(browser, pause);
  const counts = { requests: 0, suggestionsShown: 0 };
  page.on('request', (request) => request.url().endsWith('/generate/stream') && (counts.requests += 1));
  const cancelledBefore = await cancelledOnServer();
  await page.exposeFunction('countShown', () => (counts.suggestionsShown += 1));
  await page.evaluate(() => {
    let shown = false;
    new MutationObserver(() => {
      const now = !!document.querySelector('[data-testid="ghost-text"]');
      if (now && !shown) window.countShown();
      shown = now;
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  const schedule = typingSchedule(ABSTRACT.repeat(3));
  const text = ABSTRACT.repeat(3);
  const start = Date.now();
  let typed = 0;
  for (let i = 0; i < text.length && Date.now() - start < seconds * 1000; i += 1) {
    await page.waitForTimeout(schedule[i]);
    await page.keyboard.type(text[i]);
    typed += 1;
  }
  await page.waitForTimeout(2000); // the last pause's request, if any
  await context.close();
  return { ...pause, seconds, charactersTyped: typed, ...counts, cancelledOnServer: (await cancelledOnServer()) - cancelledBefore };
}

const browser = await launchChromium();
try {
  const delays = options.delays.split(',').map(Number);
  const latency = await measureLatency(browser, Number(options.runs), 400);
  const typing = [await measureTyping(browser, Number(options.seconds), { enabled: false, delayMs: 400 })];
  for (const delayMs of delays) typing.push(await measureTyping(browser, Number(options.seconds), { enabled: true, delayMs }));
  console.log(JSON.stringify({ baseUrl: BASE_URL, latency, typing }, null, 2));
} finally {
  await browser.close();
}
