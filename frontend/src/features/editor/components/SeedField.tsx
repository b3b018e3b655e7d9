/**
 * The seed setting as a text field: it keeps what the writer types, reports a value that is no seed
 * under the field without saving it, and shows a seed set from elsewhere (reset, reused from the status bar).
 */
import { Box, TextField } from '@mui/material';
import { useId, useState } from 'react';
import { parseSeedInput, seedInputFor, seedInputText } from '../model/seed-input';
import { Label } from './SettingControls';

export type SeedFieldProps = {
  seed: number | null;
  help: string;
  onChange: (seed: number | null) => void;
};

export function SeedField({ seed, help, onChange }: SeedFieldProps) {
  const id = useId();
  const [input, setInput] = useState(seedInputText(seed));
  const [error, setError] = useState<string | null>(null);
  // A seed set from elsewhere replaces what the field shows, during the render that brings it
  // (https://react.dev/learn/you-might-not-need-an-effect#adjusting-some-state-when-a-prop-changes).
  const [shownSeed, setShownSeed] = useState(seed);
  if (seed !== shownSeed) {
    setShownSeed(seed);
    setInput(seedInputFor(seed, input));
    setError(null);
  }

  const handleChange = (typed: string) => {
    setInput(typed);
    const parsed = parseSeedInput(typed);
    if ('error' in parsed) {
      setError(parsed.error);
    } else {
      setError(null);
      onChange(parsed.seed);
    }
  };

  return (
    <Box>
      <Label id={`${id}-label`} text="Seed" help={help} />
      <TextField
        value={input}
        onChange={(event) => handleChange(event.target.value)}
        error={error !== null}
        helperText={error ?? 'Empty = random each time'}
        placeholder="random"
        size="small"
        fullWidth
        slotProps={{ htmlInput: { inputMode: 'numeric', 'aria-labelledby': `${id}-label` } }}
      />
    </Box>
  );
}
