/**
 * What the writer's own input does to the suggestion. Typing its next characters keeps the rest
 * of it (it shrinks); any other edit, a cursor move or selection, a paste or an IME composition
 * dismisses it at once, which aborts its request so the server stops. Every edit restarts the
 * suggest-on-pause timer; a cursor moved away from the last edit forgets it.
 */
import { useRef, type RefObject } from 'react';
import { followTyping } from '../model/suggestion';
import type { Completion } from './use-completion';
import type { PauseScheduler } from './use-suggest-on-pause';

export type EditorInputOptions = {
  text: string;
  replaceText: (text: string, caret?: number) => void;
  completion: Pick<Completion, 'suggestionRef' | 'updateSuggestion' | 'dismiss'>;
  pause: PauseScheduler;
  /** Set while the app itself moves the caret (after accepting text): that move dismisses nothing. */
  pendingCaret: RefObject<number | null>;
};

export function useEditorInput({ text, replaceText, completion, pause, pendingCaret }: EditorInputOptions) {
  const lastEditCaret = useRef<number | null>(null);

  const dismissSuggestion = () => {
    if (completion.suggestionRef.current) completion.dismiss();
  };

  const onChange = (value: string, caret: number) => {
    const current = completion.suggestionRef.current;
    if (current) {
      // Text in the middle of an IME composition is not final: it never counts as typing the suggestion.
      const next = pause.composing() ? null : followTyping(current, text, value, caret);
      if (next) completion.updateSuggestion(() => next);
      else completion.dismiss();
    }
    replaceText(value, caret);
    lastEditCaret.current = caret;
    pause.schedule();
  };

  const onSelectionChange = (start: number, end: number) => {
    if (pendingCaret.current !== null) return;
    if (start !== end || start !== lastEditCaret.current) pause.cancel();
    const current = completion.suggestionRef.current;
    // The ghost text belongs at the cursor: moving the cursor elsewhere dismisses it.
    if (current && (start !== current.anchor || end !== current.anchor)) completion.dismiss();
  };

  const onPaste = () => {
    pause.cancel();
    dismissSuggestion();
  };

  const onCompositionStart = () => {
    pause.compositionStart();
    dismissSuggestion();
  };

  return { onChange, onSelectionChange, onPaste, onCompositionStart, onCompositionEnd: pause.compositionEnd };
}
