/** The generation controls: each labelled, explained in a tooltip, and persisted by the caller. */
import InfoOutlined from '@mui/icons-material/InfoOutlined';
import RestartAlt from '@mui/icons-material/RestartAlt';
import { Box, Button, IconButton, Slider, Stack, TextField, Tooltip, Typography } from '@mui/material';
import { useEffect, useId, useState } from 'react';
import { VisuallyHidden } from '@/components/VisuallyHidden';
import { SETTING_BOUNDS, type GenerationSettings } from '@/config/generation';

const HELP = {
  maxNewTokens:
    'The longest suggestion to write, in tokens. A token is a word or a piece of one: 40 tokens are about 30 words. The model may stop earlier at the end of an abstract.',
  temperature:
    'How adventurous the wording is. 0 always picks the most likely next word (the same text every time); around 0.8 reads naturally; above 1.2 gets surprising and often wrong.',
  topP:
    'Which words may be picked at all: only the most likely ones that together cover this share of the probability. 0.95 cuts off rare, odd words; 1 allows every word.',
  seed: 'A number that fixes the random choices: the same text, settings and seed give the same suggestion again. Leave empty for a fresh draw each time.',
  alternatives: 'How many different suggestions to write at once. Switch between them with Alt+] and Alt+[ or the arrow buttons.',
} as const;

type SliderKey = 'maxNewTokens' | 'temperature' | 'topP' | 'alternatives';

const LABELS: Record<SliderKey, string> = {
  maxNewTokens: 'Suggestion length (tokens)',
  temperature: 'Temperature',
  topP: 'Top-p',
  alternatives: 'Alternatives',
};

function Label({ id, text, help }: { id: string; text: string; help: string }) {
  return (
    <Stack direction="row" alignItems="center" spacing={0.5}>
      <Typography id={id} variant="body2" fontWeight={500}>
        {text}
      </Typography>
      <Tooltip title={help} enterTouchDelay={0} leaveTouchDelay={8000}>
        <IconButton size="small" aria-label={`About ${text.toLowerCase()}`}>
          <InfoOutlined fontSize="inherit" />
        </IconButton>
      </Tooltip>
    </Stack>
  );
}

function SettingSlider({
  setting,
  value,
  onChange,
  format,
}: {
  setting: SliderKey;
  value: number;
  onChange: (value: number) => void;
  format: (value: number) => string;
}) {
  const id = useId();
  const bounds = SETTING_BOUNDS[setting];
  return (
    <Box>
      <Stack direction="row" justifyContent="space-between" alignItems="center">
        <Label id={`${id}-label`} text={LABELS[setting]} help={HELP[setting]} />
        <Typography variant="body2" color="text.secondary" aria-hidden="true">
          {format(value)}
        </Typography>
      </Stack>
      <VisuallyHidden id={`${id}-help`}>{HELP[setting]}</VisuallyHidden>
      <Slider
        value={value}
        min={bounds.min}
        max={bounds.max}
        step={bounds.step}
        marks={setting === 'alternatives'}
        onChange={(_, next) => onChange(next as number)}
        getAriaValueText={format}
        valueLabelDisplay="auto"
        valueLabelFormat={format}
        slotProps={{ input: { 'aria-labelledby': `${id}-label`, 'aria-describedby': `${id}-help` } }}
        size="small"
      />
    </Box>
  );
}

/** Empty = no seed; otherwise a whole number in bounds; anything else is an error message. */
export function parseSeedInput(raw: string): { seed: number | null } | { error: string } {
  const text = raw.trim();
  if (text === '') return { seed: null };
  const seed = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(seed)) {
    return { error: `Seed must be a whole number from 0 to ${SETTING_BOUNDS.seed.max}, or empty.` };
  }
  return { seed };
}

export type SettingsPanelProps = {
  settings: GenerationSettings;
  onChange: <K extends keyof GenerationSettings>(key: K, value: GenerationSettings[K]) => void;
  onReset: () => void;
};

export function SettingsPanel({ settings, onChange, onReset }: SettingsPanelProps) {
  const seedId = useId();
  const [seedInput, setSeedInput] = useState(settings.seed === null ? '' : String(settings.seed));
  const [seedError, setSeedError] = useState<string | null>(null);

  // Reset, or a seed reused from the status bar, replaces what the field shows.
  useEffect(() => {
    setSeedInput((current) => {
      const parsed = parseSeedInput(current);
      return 'seed' in parsed && parsed.seed === settings.seed ? current : settings.seed === null ? '' : String(settings.seed);
    });
    setSeedError(null);
  }, [settings.seed]);

  return (
    <Stack component="section" aria-label="Generation settings" spacing={2}>
      <Typography variant="h2" sx={{ fontSize: '1rem', fontWeight: 600 }}>
        Settings
      </Typography>
      <SettingSlider setting="maxNewTokens" value={settings.maxNewTokens} onChange={(v) => onChange('maxNewTokens', v)} format={String} />
      <SettingSlider
        setting="temperature"
        value={settings.temperature}
        onChange={(v) => onChange('temperature', v)}
        format={(v) => v.toFixed(2)}
      />
      <SettingSlider setting="topP" value={settings.topP} onChange={(v) => onChange('topP', v)} format={(v) => v.toFixed(2)} />
      <SettingSlider setting="alternatives" value={settings.alternatives} onChange={(v) => onChange('alternatives', v)} format={String} />
      <Box>
        <Label id={`${seedId}-label`} text="Seed" help={HELP.seed} />
        <TextField
          value={seedInput}
          onChange={(event) => {
            setSeedInput(event.target.value);
            const parsed = parseSeedInput(event.target.value);
            if ('error' in parsed) {
              setSeedError(parsed.error);
            } else {
              setSeedError(null);
              onChange('seed', parsed.seed);
            }
          }}
          error={seedError !== null}
          helperText={seedError ?? 'Empty = random each time'}
          placeholder="random"
          size="small"
          fullWidth
          slotProps={{ htmlInput: { inputMode: 'numeric', 'aria-labelledby': `${seedId}-label` } }}
        />
      </Box>
      <Button variant="outlined" startIcon={<RestartAlt />} onClick={onReset} sx={{ alignSelf: 'flex-start' }}>
        Reset settings
      </Button>
    </Stack>
  );
}
