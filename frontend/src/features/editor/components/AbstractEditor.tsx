/**
 * The abstract editor: draft, streamed ghost-text suggestion, keyboard shortcuts, settings,
 * confidence view and status bar, wired together.
 */
import { Alert, Box, Grid, Paper, Snackbar, Stack, Typography } from '@mui/material';
import { useCallback, useLayoutEffect, useMemo, useRef, type KeyboardEvent } from 'react';
import { VisuallyHidden } from '@/components/VisuallyHidden';
import { STORAGE_KEYS } from '@/config/app';
import type { ApiError } from '@/lib/api-client';
import { useCompletion } from '../hooks/use-completion';
import { useDraft } from '../hooks/use-draft';
import { useHealth } from '../hooks/use-health';
import { useSettings } from '../hooks/use-settings';
import { useStoredState } from '../hooks/use-stored-state';
import { spanProbability } from '../model/model-spans';
import { cycleAlternative, ghostText, nextWordLength, takeCharacters, visibleAlternativeCount } from '../model/suggestion';
import { EditorToolbar } from './EditorToolbar';
import { GhostTextarea, probabilityColor } from './GhostTextarea';
import { SettingsPanel } from './SettingsPanel';
import { StatusBar } from './StatusBar';

const isMac = typeof navigator !== 'undefined' && /Mac|iPhone|iPad/.test(navigator.platform);
const parseBoolean = (raw: unknown) => (typeof raw === 'boolean' ? raw : null);

function errorText(error: ApiError): string {
  const retry = error.retryAfterSeconds !== undefined ? ` Try again in ${error.retryAfterSeconds} s.` : '';
  return `${error.message}${retry}`;
}

export function AbstractEditor() {
  const { draft, replaceText, insertText } = useDraft();
  const { settings, updateSetting, resetSettings } = useSettings();
  const [confidenceView, setConfidenceView] = useStoredState(STORAGE_KEYS.confidenceView, parseBoolean, false);
  const health = useHealth();
  const completion = useCompletion();
  const { suggestion, suggestionRef, updateSuggestion } = completion;
  const textareaRef = useRef<HTMLTextAreaElement>(null);
  // Where the caret must go after the app itself changed the text (React would put it at the end).
  const pendingCaret = useRef<number | null>(null);

  // A restored draft is continued at its end, not at offset 0 where a fresh textarea puts the caret.
  useLayoutEffect(() => {
    const length = textareaRef.current?.value.length ?? 0;
    textareaRef.current?.setSelectionRange(length, length);
  }, []);

  useLayoutEffect(() => {
    if (pendingCaret.current !== null && textareaRef.current) {
      textareaRef.current.setSelectionRange(pendingCaret.current, pendingCaret.current);
      pendingCaret.current = null;
    }
  }, [draft.text]);

  const generate = useCallback(() => {
    const textarea = textareaRef.current;
    const anchor = textarea ? textarea.selectionEnd : draft.text.length;
    // The suggestion continues the text before the cursor; a selection collapses to its end.
    textarea?.setSelectionRange(anchor, anchor);
    textarea?.focus();
    void completion.start(draft.text.slice(0, anchor), anchor, settings);
  }, [completion, draft.text, settings]);

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
    [insertText, suggestionRef, updateSuggestion],
  );

  const acceptAll = useCallback(() => {
    // Taking a suggestion that is still streaming takes what arrived and stops the rest.
    if (completion.generating) completion.stop();
    take((ghost) => ghost.length);
    updateSuggestion(() => null);
  }, [completion, take, updateSuggestion]);

  const acceptWord = useCallback(() => take(nextWordLength), [take]);
  const cycle = useCallback((step: number) => updateSuggestion((current) => current && cycleAlternative(current, step)), [updateSuggestion]);

  const handleChange = (value: string, caret: number) => {
    const current = suggestionRef.current;
    if (current) {
      // Typing the next characters of the suggestion keeps the rest of it; anything else dismisses it.
      const ghost = ghostText(current);
      const before = draft.text.slice(0, current.anchor);
      const after = draft.text.slice(current.anchor);
      const typed = value.slice(current.anchor, value.length - after.length);
      const typedThrough =
        typed.length > 0 && value.startsWith(before) && value.endsWith(after) && ghost.startsWith(typed) && caret === current.anchor + typed.length;
      if (typedThrough) {
        const next = takeCharacters(current, typed.length).next;
        updateSuggestion(() => next);
      } else {
        completion.dismiss();
      }
    }
    replaceText(value, caret);
  };

  const handleSelectionChange = (start: number, end: number) => {
    const current = suggestionRef.current;
    // The ghost text belongs at the cursor: moving the cursor elsewhere dismisses it.
    if (current && pendingCaret.current === null && (start !== current.anchor || end !== current.anchor)) completion.dismiss();
  };

  const handleTextareaKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    const ghost = suggestionRef.current ? ghostText(suggestionRef.current) : '';
    const mod = event.ctrlKey || event.metaKey;
    if (event.key === 'Tab' && !event.shiftKey && !mod && !event.altKey && ghost) {
      event.preventDefault();
      acceptAll();
    } else if (event.key === 'ArrowRight' && mod && !event.shiftKey && ghost) {
      event.preventDefault();
      acceptWord();
    }
  };

  // Shortcuts that also work while focus is on a button or slider of the editor.
  const handleEditorKeyDown = (event: KeyboardEvent<HTMLElement>) => {
    if (event.defaultPrevented) return;
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      generate();
    } else if (event.key === 'Escape' && (completion.generating || suggestionRef.current)) {
      event.preventDefault();
      completion.dismiss();
    } else if (event.altKey && (event.code === 'BracketRight' || event.code === 'BracketLeft') && suggestionRef.current) {
      event.preventDefault();
      cycle(event.code === 'BracketRight' ? 1 : -1);
    }
  };

  const ghost = suggestion ? ghostText(suggestion) : '';
  const alternativeCount = suggestion ? visibleAlternativeCount(suggestion) : 0;
  const confidence = useMemo(() => {
    const probabilities = draft.spans.map(spanProbability).filter((p): p is number => p !== null);
    if (probabilities.length === 0) return null;
    const mean = probabilities.reduce((sum, p) => sum + p, 0) / probabilities.length;
    return { tokens: probabilities.length, mean, unsure: probabilities.filter((p) => p < 0.1).length };
  }, [draft.spans]);

  const announcement = completion.generating
    ? 'Writing a suggestion…'
    : ghost
      ? `Suggestion${alternativeCount > 1 ? ` ${(suggestion?.active ?? 0) + 1} of ${alternativeCount}` : ''}: ${ghost}. Press Tab to accept, Escape to dismiss.`
      : '';

  return (
    <Box onKeyDown={handleEditorKeyDown}>
      <Grid container spacing={3}>
        <Grid size={{ xs: 12, md: 8 }}>
          <Stack component="section" aria-label="Editor">
            <EditorToolbar
              generating={completion.generating}
              hasSuggestion={ghost.length > 0}
              alternative={{ active: suggestion?.active ?? 0, count: alternativeCount }}
              confidenceView={confidenceView}
              shortcutModifier={isMac ? '⌘' : 'Ctrl'}
              onGenerate={generate}
              onStop={completion.stop}
              onAccept={acceptAll}
              onAcceptWord={acceptWord}
              onDismiss={completion.dismiss}
              onCycle={cycle}
              onConfidenceViewChange={setConfidenceView}
            />
            <GhostTextarea
              ref={textareaRef}
              value={draft.text}
              ghost={ghost}
              anchor={suggestion?.anchor ?? 0}
              spans={draft.spans}
              confidenceView={confidenceView}
              placeholder={'Title on the first line, then the abstract. Or just start: "We propose a method to"'}
              describedBy="editor-keyboard-help"
              onChange={handleChange}
              onKeyDown={handleTextareaKeyDown}
              onSelectionChange={handleSelectionChange}
            />
            <Typography id="editor-keyboard-help" variant="caption" color="text.secondary" sx={{ mt: 0.5 }}>
              {isMac ? '⌘' : 'Ctrl'}+Enter: suggest at the cursor · Tab: accept · {isMac ? '⌘' : 'Ctrl'}+→: accept one word · Esc:
              stop or dismiss · Alt+] / Alt+[: next / previous alternative
            </Typography>
            {confidenceView && (
              <Stack direction="row" spacing={1} alignItems="center" flexWrap="wrap" useFlexGap sx={{ mt: 1 }} data-testid="confidence-legend">
                <Typography variant="caption">Model text shaded by probability:</Typography>
                {[0.02, 0.25, 0.6, 0.95].map((p) => (
                  <Box key={p} component="span" sx={{ px: 0.75, borderRadius: 1, backgroundColor: probabilityColor(p), typography: 'caption' }}>
                    {Math.round(p * 100)}%
                  </Box>
                ))}
                <Typography variant="caption" color="text.secondary">
                  {confidence
                    ? `${confidence.tokens} model tokens, ${Math.round(confidence.mean * 100)}% likely on average, ${confidence.unsure} below 10%. Hover a word for its probability.`
                    : 'No accepted model text yet.'}
                </Typography>
              </Stack>
            )}
            <StatusBar text={draft.text} health={health} lastRun={completion.lastRun} onReuseSeed={(seed) => updateSetting('seed', seed)} />
          </Stack>
        </Grid>
        <Grid size={{ xs: 12, md: 4 }}>
          <Paper variant="outlined" sx={{ p: 2 }}>
            <SettingsPanel settings={settings} onChange={updateSetting} onReset={resetSettings} />
          </Paper>
        </Grid>
      </Grid>
      <VisuallyHidden aria-live="polite" role="status">
        {announcement}
      </VisuallyHidden>
      <Snackbar open={completion.error !== null} anchorOrigin={{ vertical: 'bottom', horizontal: 'center' }}>
        <Alert severity="error" variant="filled" onClose={completion.clearError} sx={{ maxWidth: 640 }}>
          {completion.error ? errorText(completion.error) : ''}
        </Alert>
      </Snackbar>
      <Snackbar
        open={completion.notice !== null}
        autoHideDuration={6000}
        onClose={completion.clearNotice}
        anchorOrigin={{ vertical: 'bottom', horizontal: 'center' }}
      >
        <Alert severity="info" onClose={completion.clearNotice}>
          {completion.notice ?? ''}
        </Alert>
      </Snackbar>
    </Box>
  );
}
