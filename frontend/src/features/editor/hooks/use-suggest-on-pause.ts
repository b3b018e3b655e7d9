/**
 * Suggest-on-pause: when the writer stops typing for the configured delay at the end of a word or
 * after a space, asks for a short suggestion at the cursor.
 *
 * Respects the server: nothing is asked while a suggestion (and so its request) is at the cursor
 * already, a 429 waits as long as its Retry-After says, and a server that is down gets nothing until
 * /health says it recovered. Automatic requests never raise an error message.
 */
import { useEffect, useLayoutEffect, useState, type RefObject } from 'react';
import type { GenerationSettings } from '@/config/generation';
import type { SuggestOnPause } from '@/config/suggest-on-pause';
import { buildPauseRequest } from '../api/generate';
import { classifyPauseFailure, isPausePoint, pausePrompt, type PauseFailure } from '../model/pause-point';
import type { Completion } from './use-completion';

export type SuggestOnPauseOptions = {
  config: SuggestOnPause;
  settings: GenerationSettings;
  /** /health says the model answers. */
  serverUp: boolean;
  textareaRef: RefObject<HTMLTextAreaElement | null>;
  completion: Pick<Completion, 'start' | 'suggestionRef'>;
  onServerDown: (reason: string) => void;
};

export type PauseScheduler = {
  /** The writer edited the text: (re)start the pause timer. */
  schedule: () => void;
  /** The writer did something else (moved the cursor, pasted): forget the pending pause. */
  cancel: () => void;
  compositionStart: () => void;
  compositionEnd: () => void;
  /** An IME composition is in progress: its intermediate text is not the writer's yet. */
  composing: () => boolean;
  dispose: () => void;
};

/**
 * Asks for a short suggestion at the cursor if now is a moment for one (switched on, server up,
 * textarea focused, cursor at a pause point, no suggestion there yet); the failure, if it failed.
 */
async function suggestAtCursor(options: SuggestOnPauseOptions): Promise<PauseFailure | null> {
  const { config, settings, serverUp, textareaRef, completion } = options;
  const textarea = textareaRef.current;
  if (!config.enabled || !serverUp || !textarea || textarea.ownerDocument.activeElement !== textarea) return null;
  const { value, selectionStart: caret, selectionEnd } = textarea;
  if (!isPausePoint(value, caret, selectionEnd)) return null;
  // A suggestion exists from its request until it is dismissed (which aborts the request), and
  // only at the cursor: if there is one, this position is answered or its request is in flight.
  if (completion.suggestionRef.current) return null;
  const { prompt, lead } = pausePrompt(value, caret);
  const outcome = await completion.start(buildPauseRequest(prompt, settings), caret, { automatic: true, lead });
  return outcome.kind === 'failed' ? classifyPauseFailure(outcome.error) : null;
}

/**
 * The timers and flags, outside React: the timer fires after renders and must act on what is true
 * then, so the hook hands every render's options to `update`.
 */
function createPauseScheduler(initial: SuggestOnPauseOptions): PauseScheduler & { update: (options: SuggestOnPauseOptions) => void } {
  let latest = initial;
  let pauseTimer: number | undefined;
  let backOffTimer: number | undefined;
  let composing = false;

  const cancel = () => {
    window.clearTimeout(pauseTimer);
    pauseTimer = undefined;
  };

  const schedule = () => {
    cancel();
    const { config } = latest;
    if (config.enabled && !composing) pauseTimer = window.setTimeout(suggest, config.delayMs);
  };

  const backOff = (ms: number) => {
    window.clearTimeout(backOffTimer);
    backOffTimer = window.setTimeout(() => {
      backOffTimer = undefined;
      schedule();
    }, ms);
  };

  function suggest() {
    pauseTimer = undefined;
    if (backOffTimer !== undefined || composing) return;
    const options = latest;
    void suggestAtCursor(options).then((failure) => {
      if (failure?.kind === 'back-off') backOff(failure.ms);
      else if (failure?.kind === 'server-down') options.onServerDown(failure.reason);
    });
  }

  return {
    update: (options) => {
      latest = options;
    },
    schedule,
    cancel,
    compositionStart: () => {
      composing = true;
      cancel();
    },
    compositionEnd: () => {
      composing = false;
      schedule();
    },
    composing: () => composing,
    dispose: () => {
      cancel();
      window.clearTimeout(backOffTimer);
    },
  };
}

export function useSuggestOnPause(options: SuggestOnPauseOptions): PauseScheduler {
  const [scheduler] = useState(() => createPauseScheduler(options));
  useLayoutEffect(() => scheduler.update(options));
  useEffect(() => () => scheduler.dispose(), [scheduler]);
  // Switched off: a pause already being timed asks nothing.
  useEffect(() => {
    if (!options.config.enabled) scheduler.cancel();
  }, [options.config.enabled, scheduler]);
  return scheduler;
}
