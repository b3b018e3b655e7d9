/**
 * The abstract editor's layout: toolbar, ghost-text textarea, keyboard help, confidence legend and
 * status bar beside the settings, with the live region and messages. useAbstractEditor wires what they do.
 */
import { Box, Grid, Paper, Stack } from '@mui/material';
import { useAbstractEditor } from '../hooks/use-abstract-editor';
import { announcementFor } from '../model/announcement';
import { ghostText, visibleAlternativeCount } from '../model/suggestion';
import { ConfidenceLegend } from './ConfidenceLegend';
import { EditorFeedback } from './EditorFeedback';
import { EditorToolbar } from './EditorToolbar';
import { GhostTextarea } from './GhostTextarea';
import { KeyboardHelp } from './KeyboardHelp';
import { SettingsPanel } from './SettingsPanel';
import { StatusBar } from './StatusBar';

const KEYBOARD_HELP_ID = 'editor-keyboard-help';

export function AbstractEditor() {
  const { draft, completion, actions, input, keyboard, textareaRef, health, ...preferences } = useAbstractEditor();
  const { confidenceView, pauseConfig, updateSetting } = preferences;
  const { suggestion } = completion;
  const ghost = suggestion ? ghostText(suggestion) : '';

  return (
    <Box onKeyDown={keyboard.onEditorKeyDown}>
      <Grid container spacing={3}>
        <Grid size={{ xs: 12, md: 8 }}>
          <Stack component="section" aria-label="Editor">
            <EditorToolbar
              // A suggestion offered on a pause is no request of the writer's: the buttons stay as they are.
              generating={completion.generating && !completion.automatic}
              hasSuggestion={ghost.length > 0}
              alternative={{ active: suggestion?.active ?? 0, count: suggestion ? visibleAlternativeCount(suggestion) : 0 }}
              confidenceView={confidenceView}
              onGenerate={actions.generate}
              onStop={completion.stop}
              onAccept={actions.acceptAll}
              onAcceptWord={actions.acceptWord}
              onDismiss={completion.dismiss}
              onCycle={actions.cycle}
              onConfidenceViewChange={preferences.setConfidenceView}
            />
            <GhostTextarea
              ref={textareaRef}
              value={draft.text}
              ghost={ghost}
              anchor={suggestion?.anchor ?? 0}
              spans={draft.spans}
              confidenceView={confidenceView}
              placeholder={'Title on the first line, then the abstract. Or just start: "We propose a method to"'}
              describedBy={KEYBOARD_HELP_ID}
              onChange={input.onChange}
              onKeyDown={keyboard.onTextareaKeyDown}
              onSelectionChange={input.onSelectionChange}
              onPaste={input.onPaste}
              onCompositionStart={input.onCompositionStart}
              onCompositionEnd={input.onCompositionEnd}
            />
            <KeyboardHelp id={KEYBOARD_HELP_ID} suggestOnPause={pauseConfig.enabled} />
            {confidenceView && <ConfidenceLegend spans={draft.spans} />}
            <StatusBar text={draft.text} health={health} lastRun={completion.lastRun} onReuseSeed={(seed) => updateSetting('seed', seed)} />
          </Stack>
        </Grid>
        <Grid size={{ xs: 12, md: 4 }}>
          <Paper variant="outlined" sx={{ p: 2 }}>
            <SettingsPanel settings={preferences.settings} onChange={updateSetting} pause={pauseConfig} onPauseChange={preferences.updatePause} onReset={preferences.resetSettings} />
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
