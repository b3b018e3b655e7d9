/** The settings: suggest-on-pause and the generation controls, each labelled, explained in a tooltip, and persisted by the caller. */
import InfoOutlined from '@mui/icons-material/InfoOutlined';
import RestartAlt from '@mui/icons-material/RestartAlt';
import { Box, Button, FormControlLabel, IconButton, Stack, Switch, Tooltip, Typography } from '@mui/material';
import { SETTING_BOUNDS, type GenerationSettings } from '@/config/generation';
import { PAUSE_DELAY_BOUNDS, PAUSE_SUGGESTION, type SuggestOnPause } from '@/config/suggest-on-pause';
import { SeedField } from './SeedField';
import { SettingSlider } from './SettingControls';

const HELP = {
  maxNewTokens:
    'The longest suggestion to write, in tokens. A token is a word or a piece of one: 40 tokens are about 30 words. The model may stop earlier at the end of an abstract.',
  temperature:
    'How adventurous the wording is. 0 always picks the most likely next word (the same text every time); around 0.8 reads naturally; above 1.2 gets surprising and often wrong.',
  topP:
    'Which words may be picked at all: only the most likely ones that together cover this share of the probability. 0.95 cuts off rare, odd words; 1 allows every word.',
  seed: 'A number that fixes the random choices: the same text, settings and seed give the same suggestion again. Leave empty for a fresh draw each time.',
  alternatives: 'How many different suggestions to write at once. Switch between them with Alt+] and Alt+[ or the arrow buttons.',
  pause: `When you stop typing at the end of a word, a short suggestion (to the end of the sentence, at most ${PAUSE_SUGGESTION.maxNewTokens} tokens) appears by itself. Keep typing to ignore it, Tab to take it. Ctrl/⌘+Enter still writes the longer one set below.`,
  delayMs: 'How long to stop typing before the suggestion is asked for. Shorter feels quicker but asks the server more often.',
} as const;

type SliderKey = 'maxNewTokens' | 'temperature' | 'topP' | 'alternatives';

const LABELS: Record<SliderKey, string> = {
  maxNewTokens: 'Suggestion length (tokens)',
  temperature: 'Temperature',
  topP: 'Top-p',
  alternatives: 'Alternatives',
};

/** Props of a slider for one of the generation settings. */
const generationSlider = (setting: SliderKey) => ({ label: LABELS[setting], help: HELP[setting], bounds: SETTING_BOUNDS[setting] });

function PauseSettings({ pause, onChange }: { pause: SuggestOnPause; onChange: SettingsPanelProps['onPauseChange'] }) {
  return (
    <Box>
      <Stack direction="row" alignItems="center" spacing={0.5}>
        <FormControlLabel
          control={<Switch checked={pause.enabled} onChange={(event) => onChange('enabled', event.target.checked)} />}
          label="Suggest while I pause"
        />
        <Tooltip title={HELP.pause} enterTouchDelay={0} leaveTouchDelay={8000}>
          <IconButton size="small" aria-label="About suggest while I pause">
            <InfoOutlined fontSize="inherit" />
          </IconButton>
        </Tooltip>
      </Stack>
      <SettingSlider
        label="Pause before suggesting (ms)"
        help={HELP.delayMs}
        bounds={PAUSE_DELAY_BOUNDS}
        value={pause.delayMs}
        onChange={(v) => onChange('delayMs', v)}
        format={(v) => `${v} ms`}
        disabled={!pause.enabled}
      />
    </Box>
  );
}

export type SettingsPanelProps = {
  settings: GenerationSettings;
  onChange: <K extends keyof GenerationSettings>(key: K, value: GenerationSettings[K]) => void;
  pause: SuggestOnPause;
  onPauseChange: <K extends keyof SuggestOnPause>(key: K, value: SuggestOnPause[K]) => void;
  onReset: () => void;
};

export function SettingsPanel({ settings, onChange, pause, onPauseChange, onReset }: SettingsPanelProps) {
  return (
    <Stack component="section" aria-label="Generation settings" spacing={2}>
      <Typography variant="h2" sx={{ fontSize: '1rem', fontWeight: 600 }}>
        Settings
      </Typography>
      <PauseSettings pause={pause} onChange={onPauseChange} />
      <SettingSlider {...generationSlider('maxNewTokens')} value={settings.maxNewTokens} onChange={(v) => onChange('maxNewTokens', v)} format={String} />
      <SettingSlider
        {...generationSlider('temperature')}
        value={settings.temperature}
        onChange={(v) => onChange('temperature', v)}
        format={(v) => v.toFixed(2)}
      />
      <SettingSlider {...generationSlider('topP')} value={settings.topP} onChange={(v) => onChange('topP', v)} format={(v) => v.toFixed(2)} />
      <SettingSlider
        {...generationSlider('alternatives')}
        value={settings.alternatives}
        onChange={(v) => onChange('alternatives', v)}
        format={String}
        marks
      />
      <SeedField seed={settings.seed} help={HELP.seed} onChange={(seed) => onChange('seed', seed)} />
      <Button variant="outlined" startIcon={<RestartAlt />} onClick={onReset} sx={{ alignSelf: 'flex-start' }}>
        Reset settings
      </Button>
    </Stack>
  );
}
