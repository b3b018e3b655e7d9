/** A setting's label with its explanation in a tooltip, and a labelled, described slider. */
import InfoOutlined from '@mui/icons-material/InfoOutlined';
import { Box, IconButton, Slider, Stack, Tooltip, Typography } from '@mui/material';
import { useId } from 'react';
import { VisuallyHidden } from '@/components/VisuallyHidden';

export function Label({ id, text, help }: { id: string; text: string; help: string }) {
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

export type SliderProps = {
  label: string;
  help: string;
  bounds: { min: number; max: number; step: number };
  value: number;
  onChange: (value: number) => void;
  format: (value: number) => string;
  marks?: boolean;
  disabled?: boolean;
};

export function SettingSlider({ label, help, bounds, value, onChange, format, marks = false, disabled = false }: SliderProps) {
  const id = useId();
  return (
    <Box>
      <Stack direction="row" justifyContent="space-between" alignItems="center">
        <Label id={`${id}-label`} text={label} help={help} />
        <Typography variant="body2" color="text.secondary" aria-hidden="true">
          {format(value)}
        </Typography>
      </Stack>
      <VisuallyHidden id={`${id}-help`}>{help}</VisuallyHidden>
      <Slider
        value={value}
        min={bounds.min}
        max={bounds.max}
        step={bounds.step}
        marks={marks}
        disabled={disabled}
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
