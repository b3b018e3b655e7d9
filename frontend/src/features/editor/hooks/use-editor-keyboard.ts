/**
 * The editor's keyboard shortcuts: Tab and Ctrl/⌘+→ in the textarea act on the ghost text;
 * Ctrl/⌘+Enter, Escape and Alt+] / Alt+[ also work while focus is on a button or slider of the editor.
 */
import type { KeyboardEvent } from 'react';
import { ghostText } from '../model/suggestion';
import type { Completion } from './use-completion';
import type { SuggestionActions } from './use-suggestion-actions';

export function useEditorKeyboard(completion: Completion, actions: SuggestionActions) {
  const { suggestionRef } = completion;

  const onTextareaKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    const ghost = suggestionRef.current ? ghostText(suggestionRef.current) : '';
    const mod = event.ctrlKey || event.metaKey;
    if (event.key === 'Tab' && !event.shiftKey && !mod && !event.altKey && ghost) {
      event.preventDefault();
      actions.acceptAll();
    } else if (event.key === 'ArrowRight' && mod && !event.shiftKey && ghost) {
      event.preventDefault();
      actions.acceptWord();
    }
  };

  const onEditorKeyDown = (event: KeyboardEvent<HTMLElement>) => {
    if (event.defaultPrevented) return;
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      actions.generate();
    } else if (event.key === 'Escape' && (completion.generating || suggestionRef.current)) {
      event.preventDefault();
      completion.dismiss();
    } else if (event.altKey && (event.code === 'BracketRight' || event.code === 'BracketLeft') && suggestionRef.current) {
      event.preventDefault();
      actions.cycle(event.code === 'BracketRight' ? 1 : -1);
    }
  };

  return { onTextareaKeyDown, onEditorKeyDown };
}
