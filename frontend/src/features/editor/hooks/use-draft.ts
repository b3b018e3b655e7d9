/**
 * The draft text and the spans of it the model wrote, persisted together.
 * Only the writer's edits and accepted suggestions change it: never an error, never a trim.
 */
import { useCallback } from 'react';
import { STORAGE_KEYS } from '@/config/app';
import { applyEdit, diffEdit, mergeSpans, spansMatchingText, type ModelSpan } from '../model/model-spans';
import { useStoredState } from './use-stored-state';

export type Draft = { text: string; spans: ModelSpan[] };

const EMPTY_DRAFT: Draft = { text: '', spans: [] };

export function parseDraft(raw: unknown): Draft | null {
  if (!raw || typeof raw !== 'object') return null;
  const stored = raw as { text?: unknown; spans?: unknown };
  if (typeof stored.text !== 'string') return null;
  const spans = Array.isArray(stored.spans)
    ? stored.spans.filter(
        (span): span is ModelSpan =>
          !!span &&
          typeof span === 'object' &&
          typeof span.text === 'string' &&
          (span.logprob === null || typeof span.logprob === 'number'),
      )
    : [];
  // Spans that no longer match the text (edited in another tab, older format) are dropped, the text never is.
  return { text: stored.text, spans: spansMatchingText(spans, stored.text) };
}

export function useDraft() {
  const [draft, setDraft] = useStoredState(STORAGE_KEYS.draft, parseDraft, EMPTY_DRAFT);

  /** The writer changed the textarea: keep the spans the edit did not touch. */
  const replaceText = useCallback(
    (text: string, caret?: number) =>
      setDraft((previous) => ({ text, spans: applyEdit(previous.spans, diffEdit(previous.text, text, caret)) })),
    [setDraft],
  );

  /** Inserts accepted model text at a known offset (a diff could place repeated words wrongly). */
  const insertText = useCallback(
    (at: number, inserted: string, modelSpans: ModelSpan[]) =>
      setDraft((previous) => ({
        text: previous.text.slice(0, at) + inserted + previous.text.slice(at),
        spans: mergeSpans(applyEdit(previous.spans, { start: at, end: at, insertedLength: inserted.length }), modelSpans),
      })),
    [setDraft],
  );

  return { draft, replaceText, insertText };
}
