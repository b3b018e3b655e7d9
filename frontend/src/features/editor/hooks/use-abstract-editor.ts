/**
 * The abstract editor's state and behaviour, wired together: the draft, the settings, the
 * confidence view, the server's health, the suggestion, and what the writer's keys, clicks, edits
 * and pauses do to it. The AbstractEditor component only lays it out.
 */
import { useRef } from 'react';
import { STORAGE_KEYS } from '@/config/app';
import { useCompletion } from './use-completion';
import { useDraft } from './use-draft';
import { useEditorInput } from './use-editor-input';
import { useEditorKeyboard } from './use-editor-keyboard';
import { useHealth } from './use-health';
import { useSettings } from './use-settings';
import { useStoredState } from './use-stored-state';
import { useSuggestOnPause } from './use-suggest-on-pause';
import { useSuggestionActions } from './use-suggestion-actions';

const parseBoolean = (raw: unknown) => (typeof raw === 'boolean' ? raw : null);

export function useAbstractEditor() {
  const { draft, replaceText, insertText } = useDraft();
  const { settings, updateSetting, pause: pauseConfig, updatePause, resetSettings } = useSettings();
  const [confidenceView, setConfidenceView] = useStoredState(STORAGE_KEYS.confidenceView, parseBoolean, false);
  const { health, reportDown } = useHealth();
  const completion = useCompletion();
  const textareaRef = useRef<HTMLTextAreaElement>(null);

  const actions = useSuggestionActions({ text: draft.text, insertText, settings, completion, textareaRef });
  const pause = useSuggestOnPause({
    config: pauseConfig,
    settings,
    serverUp: health.state === 'ok',
    textareaRef,
    completion,
    onServerDown: reportDown,
  });
  const input = useEditorInput({ text: draft.text, replaceText, completion, pause, pendingCaret: actions.pendingCaret });
  const keyboard = useEditorKeyboard(completion, actions);

  return {
    draft,
    settings,
    updateSetting,
    pauseConfig,
    updatePause,
    resetSettings,
    confidenceView,
    setConfidenceView,
    health,
    completion,
    textareaRef,
    actions,
    input,
    keyboard,
  };
}
