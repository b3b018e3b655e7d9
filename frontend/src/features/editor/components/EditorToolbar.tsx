/** Buttons for everything the keyboard shortcuts do, so mouse, touch and screen-reader users can do it too. */
import AutoAwesome from '@mui/icons-material/AutoAwesome';
import ChevronLeft from '@mui/icons-material/ChevronLeft';
import ChevronRight from '@mui/icons-material/ChevronRight';
import StopCircleOutlined from '@mui/icons-material/StopCircleOutlined';
import { Button, CircularProgress, FormControlLabel, IconButton, Stack, Switch, Tooltip, Typography } from '@mui/material';
import { SHORTCUT_MODIFIER as mod } from '../model/shortcuts';

export type EditorToolbarProps = {
  generating: boolean;
  hasSuggestion: boolean;
  alternative: { active: number; count: number };
  confidenceView: boolean;
  onGenerate: () => void;
  onStop: () => void;
  onAccept: () => void;
  onAcceptWord: () => void;
  onDismiss: () => void;
  onCycle: (step: number) => void;
  onConfidenceViewChange: (on: boolean) => void;
};

export function EditorToolbar(props: EditorToolbarProps) {
  const { generating, hasSuggestion, alternative } = props;
  return (
    <Stack direction="row" spacing={1} alignItems="center" flexWrap="wrap" useFlexGap sx={{ py: 1 }}>
      <Tooltip title={`Continue the text at the cursor (${mod}+Enter)`}>
        <span>
          <Button
            variant="contained"
            onClick={props.onGenerate}
            disabled={generating}
            startIcon={generating ? <CircularProgress size={16} color="inherit" aria-hidden="true" /> : <AutoAwesome />}
            aria-keyshortcuts="Control+Enter Meta+Enter"
          >
            {generating ? 'Generating…' : 'Generate'}
          </Button>
        </span>
      </Tooltip>
      <Tooltip title="Stop writing this suggestion (Esc also stops and dismisses it)">
        <span>
          <Button variant="outlined" color="warning" onClick={props.onStop} disabled={!generating} startIcon={<StopCircleOutlined />}>
            Stop
          </Button>
        </span>
      </Tooltip>
      {hasSuggestion && (
        <>
          <Button onClick={props.onAccept} aria-keyshortcuts="Tab">
            Accept (Tab)
          </Button>
          <Button onClick={props.onAcceptWord} aria-keyshortcuts="Control+ArrowRight Meta+ArrowRight">
            Accept word ({mod}+→)
          </Button>
          <Button onClick={props.onDismiss} aria-keyshortcuts="Escape">
            Dismiss (Esc)
          </Button>
        </>
      )}
      {hasSuggestion && alternative.count > 1 && (
        <Stack direction="row" alignItems="center" role="group" aria-label="Alternatives">
          <IconButton aria-label="Previous alternative (Alt+[)" aria-keyshortcuts="Alt+BracketLeft" onClick={() => props.onCycle(-1)}>
            <ChevronLeft />
          </IconButton>
          <Typography variant="body2" aria-live="polite" data-testid="alternative-position">
            {alternative.active + 1} of {alternative.count}
          </Typography>
          <IconButton aria-label="Next alternative (Alt+])" aria-keyshortcuts="Alt+BracketRight" onClick={() => props.onCycle(1)}>
            <ChevronRight />
          </IconButton>
        </Stack>
      )}
      <FormControlLabel
        sx={{ ml: 'auto' }}
        control={<Switch checked={props.confidenceView} onChange={(event) => props.onConfidenceViewChange(event.target.checked)} />}
        label="Confidence view"
      />
    </Stack>
  );
}
