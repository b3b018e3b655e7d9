/**
 * The abstract editor: draft, streamed ghost-text suggestion (asked for, or offered on a pause),
 * keyboard shortcuts, settings, confidence view and status bar, wired together.
 */
import { Box, Grid, Paper, Stack, Typography } from '@mui/material';
import { useRef } from 'react';
import { STORAGE_KEYS } from '@/config/app';
import { useCompletion } from '../hooks/use-completion';
import { useDraft } from '../hooks/use-draft';
import { useEditorInput } from '../hooks/use-editor-input';
import { useEditorKeyboard } from '../hooks/use-editor-keyboard';
import { useHealth } from '../hooks/use-health';
import { useSettings } from '../hooks/use-settings';
import { useStoredState } from '../hooks/use-stored-state';
import { useSuggestOnPause } from '../hooks/use-suggest-on-pause';
import { useSuggestionActions } from '../hooks/use-suggestion-actions';
import { announcementFor } from '../model/announcement';
import { ghostText, visibleAlternativeCount } from '../model/suggestion';
import { ConfidenceLegend } from './ConfidenceLegend';
import { EditorFeedback } from './EditorFeedback';
import { EditorToolbar } from './EditorToolbar';
import { GhostTextarea } from './GhostTextarea';
import { SettingsPanel } from './SettingsPanel';
import { StatusBar } from './StatusBar';

const isMac = typeof navigator !== 'undefined' && /Mac|iPhone|iPad/.test(navigator.platform);
const parseBoolean = (raw: unknown) => (typeof raw === 'boolean' ? raw : null);

export function AbstractEditor() {
  const { draft, replaceText, insertText } = useDraft();
  const { settings, updateSetting, pause: pauseConfig, updatePause, resetSettings } = useSettings();
  const [confidenceView, setConfidenceView] = useStoredState(STORAGE_KEYS.confidenceView, parseBoolean, false);
  const { health, reportDown } = useHealth();
  const completion = useCompletion();
  const { suggestion } = completion;
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

  const ghost = suggestion ? ghostText(suggestion) : '';
  const alternativeCount = suggestion ? visibleAlternativeCount(suggestion) : 0;
  const mod = isMac ? '⌘' : 'Ctrl';

  return (
    <Box onKeyDown={keyboard.onEditorKeyDown}>
      <Grid container spacing={3}>
        <Grid size={{ xs: 12, md: 8 }}>
          <Stack component="section" aria-label="Editor">
            <EditorToolbar
              // A suggestion offered on a pause is no request of the writer's: the buttons stay as they are.
              generating={completion.generating && !completion.automatic}
              hasSuggestion={ghost.length > 0}
              alternative={{ active: suggestion?.active ?? 0, count: alternativeCount }}
              confidenceView={confidenceView}
              shortcutModifier={mod}
              onGenerate={actions.generate}
              onStop={completion.stop}
              onAccept={actions.acceptAll}
              onAcceptWord={actions.acceptWord}
              onDismiss={completion.dismiss}
              onCycle={actions.cycle}
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
              onChange={input.onChange}
              onKeyDown={keyboard.onTextareaKeyDown}
              onSelectionChange={input.onSelectionChange}
              onPaste={input.onPaste}
              onCompositionStart={input.onCompositionStart}
              onCompositionEnd={input.onCompositionEnd}
            />
            <Typography id="editor-keyboard-help" variant="caption" color="text.secondary" sx={{ mt: 0.5 }}>
              {pauseConfig.enabled ? 'Pause typing for a suggestion · ' : ''}
              {mod}+Enter: suggest at the cursor · Tab: accept · {mod}+→: accept one word · Esc: stop or dismiss · Alt+] / Alt+[:
              next / previous alternative
            </Typography>
            {confidenceView && <ConfidenceLegend spans={draft.spans} />}
            <StatusBar text={draft.text} health={health} lastRun={completion.lastRun} onReuseSeed={(seed) => updateSetting('seed', seed)} />
          </Stack>
        </Grid>
        <Grid size={{ xs: 12, md: 4 }}>
          <Paper variant="outlined" sx={{ p: 2 }}>
            <SettingsPanel settings={settings} onChange={updateSetting} pause={pauseConfig} onPauseChange={updatePause} onReset={resetSettings} />
          </Paper>
        </Grid>
      </Grid>
      <EditorFeedback
        announcement={announcementFor(suggestion, completion)}
        error={completion.error}
        notice={completion.notice}
        onCloseError={completion.clearError}
        onCloseNotice={completion.clearNotice}
      />
    </Box>
  );
}
