/**
 * Which parts of the draft the model wrote, with each token's log-probability,
 * kept in step with the draft as the writer edits it.
 */

/** A run of draft characters [start, end) that came from one accepted model token. */
export type ModelSpan = { start: number; end: number; logprob: number | null; text: string };

/** One edit of the draft: old characters [start, end) were replaced by `insertedLength` new ones. */
export type TextEdit = { start: number; end: number; insertedLength: number };

/**
 * The single replacement that turns `before` into `after`. When the change is ambiguous
 * ("a" typed into "aa"), `caret` (the cursor after the change, where typing ends) says where it happened.
 */
export function diffEdit(before: string, after: string, caret?: number): TextEdit {
  const shorter = Math.min(before.length, after.length);
  const commonPrefix = (limit: number) => {
    let length = 0;
    while (length < limit && before[length] === after[length]) length += 1;
    return length;
  };
  const commonSuffix = (limit: number) => {
    let length = 0;
    while (length < limit && before[before.length - 1 - length] === after[after.length - 1 - length]) length += 1;
    return length;
  };
  let prefix: number;
  let suffix: number;
  if (caret !== undefined && caret >= 0 && caret <= after.length) {
    // Everything after the caret is old text, so the unchanged tail is at most that long.
    suffix = Math.min(commonSuffix(shorter), after.length - caret);
    prefix = commonPrefix(shorter - suffix);
  } else {
    prefix = commonPrefix(shorter);
    suffix = commonSuffix(shorter - prefix);
  }
  return { start: prefix, end: before.length - suffix, insertedLength: after.length - suffix - prefix };
}

/**
 * Spans before the edit stay, spans after it move with the text, and a span the edit touches
 * is dropped: once the writer changed those characters they are no longer the model's.
 */
export function applyEdit(spans: readonly ModelSpan[], edit: TextEdit): ModelSpan[] {
  const delta = edit.insertedLength - (edit.end - edit.start);
  const kept: ModelSpan[] = [];
  for (const span of spans) {
    if (span.end <= edit.start) {
      // An insertion right after a span leaves the span's own characters intact.
      kept.push(span);
    } else if (span.start >= edit.end) {
      kept.push({ ...span, start: span.start + delta, end: span.end + delta });
    }
  }
  return kept;
}

/** Adds spans for freshly inserted model text; they never overlap kept ones because the insert split them. */
export function mergeSpans(spans: readonly ModelSpan[], added: readonly ModelSpan[]): ModelSpan[] {
  return [...spans, ...added].sort((a, b) => a.start - b.start);
}

/** Keeps only spans that still describe the text (used on data restored from storage). */
export function spansMatchingText(spans: readonly ModelSpan[], text: string): ModelSpan[] {
  return spans.filter(
    (span) =>
      Number.isInteger(span.start) &&
      Number.isInteger(span.end) &&
      span.start >= 0 &&
      span.start < span.end &&
      span.end <= text.length &&
      text.slice(span.start, span.end) === span.text,
  );
}

/** Probability in [0, 1] of a span's token, or null when the server sent no log-probability. */
export function spanProbability(span: Pick<ModelSpan, 'logprob'>): number | null {
  return span.logprob === null ? null : Math.min(1, Math.max(0, Math.exp(span.logprob)));
}
