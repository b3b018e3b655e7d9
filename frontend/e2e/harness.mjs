/**
 * Browser plumbing for the end-to-end scenarios (*.e2e.mjs): Debian's Chromium (browser.mjs),
 * a fresh profile per scenario, and waits that read the page as a user would.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { launchChromium } from './browser.mjs';

export const BASE_URL = process.env.BASE_URL;
if (!BASE_URL) throw new Error('Set BASE_URL to the server under test, e.g. http://127.0.0.1:8000');
const here = dirname(fileURLToPath(import.meta.url));
export const SCREENSHOT_PATH = resolve(process.env.SCREENSHOT_PATH ?? resolve(here, '../../artifacts/e2e/editor.png'));
const TIMEOUT = 30_000; // one browser action or wait
export const TEST_TIMEOUT = 90_000; // one scenario

let browser;

before(async () => {
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
});

/** Suggest-on-pause as the settings panel stores it (see src/config/suggest-on-pause.ts). */
export const PAUSE_KEY = 'abstract-autocomplete:suggest-on-pause:v1';

/**
 * A fresh profile (empty localStorage) per test; collects page errors and the generate requests.
 * Suggest-on-pause is off unless asked for, so a scenario sees only the requests it makes.
 */
export async function openEditor({ viewport = { width: 1280, height: 860 }, colorScheme = 'light', suggestOnPause = false, pauseMs = 400 } = {}) {
  const context = await browser.newContext({ viewport, colorScheme });
  await context.addInitScript(
    ([key, value]) => window.localStorage.setItem(key, value),
    [PAUSE_KEY, JSON.stringify({ enabled: suggestOnPause, delayMs: pauseMs })],
  );
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const pageErrors = [];
  const requests = [];
  page.on('pageerror', (error) => pageErrors.push(error));
  page.on('request', (request) => {
    if (request.url().endsWith('/generate/stream')) requests.push(request.postDataJSON());
  });
  await page.goto(BASE_URL);
  const editor = page.getByRole('textbox', { name: 'Abstract draft' });
  await editor.waitFor();
  return { context, page, editor, pageErrors, requests };
}

export const ghost = (page) => page.getByTestId('ghost-text');
export const generateButton = (page) => page.getByRole('button', { name: /^Generate/ });
/** The status bar shows the last run only when the done event arrived. */
export const lastRun = (page) => page.getByTestId('last-run');

/** Ctrl+Enter, then wait until the generation ended (the Generate button is enabled again). */
export async function generateAndWait(page) {
  const response = page.waitForResponse((r) => r.url().endsWith('/generate/stream'));
  await page.keyboard.press('Control+Enter');
  assert.equal((await response).status(), 200);
  await waitForGenerateEnabled(page);
}

// The Generate button is disabled from the moment a generation starts (synchronously, in the key
// or click handler) until it ended in any way.
export function waitForGenerateEnabled(page) {
  return page.waitForFunction(() => {
    const button = [...document.querySelectorAll('button')].find((b) => /^Generat/.test(b.textContent));
    return button && !button.disabled;
  });
}

export async function setSlider(page, name, { home = true, steps = 0, end = false }) {
  const slider = page.getByRole('slider', { name });
  await slider.focus();
  if (end) await page.keyboard.press('End');
  else if (home) await page.keyboard.press('Home');
  for (let i = 0; i < steps; i += 1) await page.keyboard.press('ArrowRight');
}

export async function metric(name) {
  const text = await (await fetch(`${BASE_URL}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(name) && !line.startsWith('#'))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}


/**
 * Stops the server's worker processes (SIGSTOP) until the returned function resumes them
 * (SIGCONT): a request sent meanwhile is on its way but not yet answered, however fast the
 * model is. SERVER_PID is the gunicorn master's pid (tests/test_frontend_e2e.py sets it).
 */
export function freezeServer() {
  const master = Number(process.env.SERVER_PID);
  assert.ok(master > 0, 'SERVER_PID (the gunicorn master) is needed to pause the server');
  const workers = readFileSync(`/proc/${master}/task/${master}/children`, 'utf8').trim().split(/\s+/).map(Number);
  assert.ok(workers.length > 0, 'the gunicorn master has workers');
  for (const pid of workers) process.kill(pid, 'SIGSTOP');
  return () => {
    for (const pid of workers) process.kill(pid, 'SIGCONT');
  };
}

export async function expectHealthy(page) {
  await page.getByText(/^Model: /).waitFor();
}

/** Polls `check` for up to 10 s. */
export async function waitUntil(check, what) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting until ${what}`);
}

export async function isFocused(locator) {
  return locator.evaluate((element) => element === document.activeElement);
}
