/**
 * What the writer can do with the suggestion (ask for one, accept it whole or a word at a time,
 * cycle its alternatives), and putting the caret where it belongs after the app changed the text.
 */
import { useCallback, useLayoutEffect, useRef, type RefObject } from 'react';
import type { GenerationSettings } from '@/config/generation';
import { buildGenerateRequest } from '../api/generate';
import type { ModelSpan } from '../model/model-spans';
import { cycleAlternative, ghostText, nextWordLength, takeCharacters } from '../model/suggestion';
import type { Completion } from './use-completion';

export type SuggestionActionsOptions = {
  text: string;
  insertText: (at: number, inserted: string, spans: ModelSpan[]) => void;
  settings: GenerationSettings;
  completion: Completion;
  textareaRef: RefObject<HTMLTextAreaElement | null>;
};

export function useSuggestionActions({ text, insertText, settings, completion, textareaRef }: SuggestionActionsOptions) {
  const { suggestionRef, updateSuggestion } = completion;
  // Where the caret must go after the app itself changed the text (React would put it at the end).
  const pendingCaret = useRef<number | null>(null);

  // A restored draft is continued at its end, not at offset 0 where a fresh textarea puts the caret.
  useLayoutEffect(() => {
    const length = textareaRef.current?.value.length ?? 0;
    textareaRef.current?.setSelectionRange(length, length);
  }, [textareaRef]);

  useLayoutEffect(() => {
    if (pendingCaret.current !== null && textareaRef.current) {
      textareaRef.current.setSelectionRange(pendingCaret.current, pendingCaret.current);
      pendingCaret.current = null;
    }
  }, [text, textareaRef]);

  /** The longer suggestion with the panel's settings (Ctrl+Enter, the Generate button). */
  const generate = useCallback(() => {
    const textarea = textareaRef.current;
    const anchor = textarea ? textarea.selectionEnd : text.length;
    // The suggestion continues the text before the cursor; a selection collapses to its end.
    textarea?.setSelectionRange(anchor, anchor);
    textarea?.focus();
    void completion.start(buildGenerateRequest(text.slice(0, anchor), settings), anchor);
  }, [completion, text, settings, textareaRef]);

  const take = useCallback(
    (length: (ghost: string) => number) => {
      const current = suggestionRef.current;
      if (!current) return;
      const { inserted, at, spans, next } = takeCharacters(current, length(ghostText(current)));
      if (inserted) {
        pendingCaret.current = at + inserted.length;
        insertText(at, inserted, spans);
      }
      updateSuggestion(() => next);
      textareaRef.current?.focus();
    },
    [insertText, suggestionRef, updateSuggestion, textareaRef],
  );

  const acceptAll = useCallback(() => {
    // Taking a suggestion that is still streaming takes what arrived and stops the rest.
    if (completion.generating) completion.stop();
    take((ghost) => ghost.length);
    updateSuggestion(() => null);
  }, [completion, take, updateSuggestion]);

  const acceptWord = useCallback(() => take(nextWordLength), [take]);
  const cycle = useCallback((step: number) => updateSuggestion((current) => current && cycleAlternative(current, step)), [updateSuggestion]);

  return { generate, acceptAll, acceptWord, cycle, pendingCaret };
}

export type SuggestionActions = ReturnType<typeof useSuggestionActions>;
