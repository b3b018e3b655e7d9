/**
 * The suggestion shown as ghost text at the cursor: its alternatives as they stream in,
 * which one is shown, and how much of it the writer already took into the draft.
 * Pure functions over immutable state, so every keyboard action is easy to test.
 */
import type { ModelSpan } from './model-spans';

export type SuggestedToken = { text: string; logprob: number | null };

export type Alternative = { text: string; tokens: SuggestedToken[]; finishReason: string | null };

export type Suggestion = {
  /** Draft offset where the ghost text is shown: the cursor when it was asked for, moved by accepted words. */
  anchor: number;
  alternatives: Alternative[];
  active: number;
  /** Characters of the active alternative already in the draft (the lead, then accepted word by word or typed through). */
  consumed: number;
  /**
   * What the writer had typed at the anchor beyond the prompt when asking ("" or one space, see
   * pausePrompt): an alternative that does not begin with it does not continue the draft and shows nothing.
   */
  lead: string;
  /** After a word was taken, the other alternatives no longer continue the draft, so cycling stops. */
  locked: boolean;
  streaming: boolean;
};

export function startSuggestion(anchor: number, count: number, lead = ''): Suggestion {
  return {
    anchor,
    alternatives: Array.from({ length: count }, () => ({ text: '', tokens: [], finishReason: null })),
    active: 0,
    consumed: lead.length,
    lead,
    locked: false,
    streaming: true,
  };
}

export function addToken(suggestion: Suggestion, index: number, token: SuggestedToken): Suggestion {
  if (index < 0 || index >= suggestion.alternatives.length) return suggestion;
  const alternatives = suggestion.alternatives.map((alternative, i) =>
    i === index ? { ...alternative, text: alternative.text + token.text, tokens: [...alternative.tokens, token] } : alternative,
  );
  return { ...suggestion, alternatives };
}

/** The server's final texts win over the streamed ones (a stop sequence may cut the tail). */
export function finishSuggestion(suggestion: Suggestion, completions: { text: string; finishReason: string }[]): Suggestion {
  const alternatives = suggestion.alternatives.map((alternative, i) => {
    const final = completions[i];
    if (!final) return alternative;
    // A locked alternative's consumed prefix is already in the draft; keep it if the final text disagrees.
    if (i === suggestion.active && suggestion.consumed > 0 && !final.text.startsWith(alternative.text.slice(0, suggestion.consumed))) {
      return { ...alternative, finishReason: final.finishReason };
    }
    return { ...alternative, text: final.text, finishReason: final.finishReason };
  });
  return { ...suggestion, alternatives, streaming: false };
}

export function stopStreaming(suggestion: Suggestion): Suggestion {
  return { ...suggestion, streaming: false };
}

/** A suggestion whose stream ended early (stopped, failed): what arrived, if anything did. */
export function keepStreamed(suggestion: Suggestion | null): Suggestion | null {
  return suggestion && hasAnyText(suggestion) ? stopStreaming(suggestion) : null;
}

/** The not yet accepted text of the alternative on show. */
export function ghostText(suggestion: Suggestion): string {
  const text = suggestion.alternatives[suggestion.active]?.text ?? '';
  return text.startsWith(suggestion.lead) ? text.slice(suggestion.consumed) : '';
}

/** Whether any alternative has text to show. */
export function hasAnyText(suggestion: Suggestion): boolean {
  return suggestion.alternatives.some(({ text }) => text.startsWith(suggestion.lead) && text.length > suggestion.consumed);
}

/** Number of alternatives the writer can cycle through. */
export function visibleAlternativeCount(suggestion: Suggestion): number {
  return suggestion.locked ? 1 : suggestion.alternatives.length;
}

export function cycleAlternative(suggestion: Suggestion, step: number): Suggestion {
  const count = visibleAlternativeCount(suggestion);
  if (count < 2) return suggestion;
  return { ...suggestion, active: (((suggestion.active + step) % count) + count) % count };
}

/** Length of the next word of the ghost text: its leading spaces plus one run of non-space characters. */
export function nextWordLength(ghost: string): number {
  const match = /^\s*\S+/.exec(ghost) ?? /^\s+/.exec(ghost);
  return match ? match[0].length : 0;
}

/**
 * Spans for characters [from, to) of an alternative's text, placed at draft offset `at`.
 * A token that decoded to "" (half of a multi-byte character) passes its log-probability on to
 * the token that completes the character, so the shaded character carries both.
 */
export function spansForRange(alternative: Alternative, from: number, to: number, at: number): ModelSpan[] {
  const spans: ModelSpan[] = [];
  let offset = 0;
  let pendingLogprob = 0;
  let pendingKnown = true;
  for (const token of alternative.tokens) {
    if (token.text === '') {
      if (token.logprob === null) pendingKnown = false;
      else pendingLogprob += token.logprob;
      continue;
    }
    const start = offset;
    const end = offset + token.text.length;
    offset = end;
    const logprob = token.logprob === null || !pendingKnown ? null : token.logprob + pendingLogprob;
    pendingLogprob = 0;
    pendingKnown = true;
    const clippedStart = Math.max(start, from);
    const clippedEnd = Math.min(end, to, alternative.text.length);
    if (clippedStart >= clippedEnd) continue;
    spans.push({
      start: at + clippedStart - from,
      end: at + clippedEnd - from,
      logprob,
      text: alternative.text.slice(clippedStart, clippedEnd),
    });
  }
  return spans;
}

/** What taking `length` more characters of the ghost text inserts into the draft, and the state after. */
export function takeCharacters(
  suggestion: Suggestion,
  length: number,
): { inserted: string; at: number; spans: ModelSpan[]; next: Suggestion | null } {
  const alternative = suggestion.alternatives[suggestion.active];
  const ghost = ghostText(suggestion);
  const take = Math.min(length, ghost.length);
  const inserted = ghost.slice(0, take);
  const spans = alternative ? spansForRange(alternative, suggestion.consumed, suggestion.consumed + take, suggestion.anchor) : [];
  const rest = ghost.slice(take);
  const next =
    rest === '' && !suggestion.streaming
      ? null
      : { ...suggestion, anchor: suggestion.anchor + take, consumed: suggestion.consumed + take, locked: true };
  return { inserted, at: suggestion.anchor, spans, next };
}

/**
 * The suggestion after the writer edited `previous` into `next`, leaving the cursor at `caret`:
 * if the edit typed the ghost text's next characters at its anchor, the rest of it (it shrinks
 * instead of flickering away); after any other edit, null.
 */
export function followTyping(suggestion: Suggestion, previous: string, next: string, caret: number): Suggestion | null {
  const before = previous.slice(0, suggestion.anchor);
  const after = previous.slice(suggestion.anchor);
  if (!next.startsWith(before) || !next.endsWith(after)) return null;
  const typed = next.slice(suggestion.anchor, next.length - after.length);
  const typedThrough = typed.length > 0 && ghostText(suggestion).startsWith(typed) && caret === suggestion.anchor + typed.length;
  return typedThrough ? takeCharacters(suggestion, typed.length).next : null;
}
