/**
 * Pure rules of suggest-on-pause: where a suggestion may be offered, what is sent for it, and
 * what a failed automatic request means for the next ones.
 */
import { DEFAULT_RETRY_AFTER_S } from '@/config/suggest-on-pause';
import type { ApiError } from '@/lib/api-client';

// A word ends in a letter, digit or mark, or in punctuation that closes it.
const WORD_END = /[\p{L}\p{N}\p{M}.,;:!?)\]}"'’”%]/u;

/**
 * True at a collapsed cursor that ends a word or follows white space, with some text before it
 * and nothing but white space (or the end) right after it: never inside a word, never on a
 * selection, never in an empty draft.
 */
export function isPausePoint(text: string, start: number, end: number): boolean {
  if (start !== end || start <= 0 || start > text.length) return false;
  const after = text.charAt(start);
  if (after !== '' && !/\s/.test(after)) return false;
  if (!/\S/.test(text.slice(0, start))) return false;
  const before = text.charAt(start - 1);
  return /\s/.test(before) || WORD_END.test(before);
}

/**
 * The prompt for a suggestion at `caret`, and the `lead` the writer already typed that the
 * suggestion must begin with. GPT-2 writes a word together with the space before it, so after
 * "a method " the model is asked to continue "a method" and its " to learn" is shown as "to learn";
 * a continuation that does not begin with the space is not shown.
 */
export function pausePrompt(text: string, caret: number): { prompt: string; lead: string } {
  const before = text.slice(0, caret);
  if (/\S $/.test(before)) return { prompt: before.slice(0, -1), lead: ' ' };
  return { prompt: before, lead: '' };
}

export type PauseFailure = { kind: 'back-off'; ms: number } | { kind: 'server-down'; reason: string } | { kind: 'skip' };

/**
 * What an automatic request's failure means: 429 waits as long as the server asked; an
 * unreachable or unavailable server stops automatic requests until /health recovers; anything
 * else (a draft over the API's limits, say) only costs this one suggestion.
 */
export function classifyPauseFailure(error: ApiError): PauseFailure {
  if (error.status === 429) return { kind: 'back-off', ms: (error.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_S) * 1000 };
  if (error.status === 503 || error.type === 'network') return { kind: 'server-down', reason: error.message };
  return { kind: 'skip' };
}
