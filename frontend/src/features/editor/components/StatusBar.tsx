/** Word and character counts, the last completion's speed and seed, and which model is answering. */
import { Box, Button, Chip, Stack, Tooltip, Typography } from '@mui/material';
import type { HealthState } from '../hooks/use-health';
import type { RunStats } from '../model/run-stats';

function countWords(text: string): number {
  return text.split(/\s+/).filter((word) => word.length > 0).length;
}

function HealthIndicator({ health }: { health: HealthState }) {
  if (health.state === 'checking') return <Chip size="small" label="Checking model…" variant="outlined" />;
  if (health.state === 'unavailable') {
    return (
      <Tooltip title={health.reason}>
        <Chip size="small" color="error" variant="outlined" label={`Model unavailable: ${health.reason}`} sx={{ maxWidth: '100%' }} />
      </Tooltip>
    );
  }
  const details = [health.quantization, health.parameters ? `${(health.parameters / 1e6).toFixed(1)}M parameters` : null]
    .filter(Boolean)
    .join(', ');
  return (
    <Chip
      size="small"
      color="success"
      variant="outlined"
      label={`Model: ${health.model}${details ? ` (${details})` : ''}`}
      sx={{ maxWidth: '100%' }}
    />
  );
}

export type StatusBarProps = {
  text: string;
  health: HealthState;
  lastRun: RunStats | null;
  onReuseSeed: (seed: number) => void;
};

export function StatusBar({ text, health, lastRun, onReuseSeed }: StatusBarProps) {
  const words = countWords(text);
  return (
    <Stack
      component="footer"
      aria-label="Status"
      direction={{ xs: 'column', sm: 'row' }}
      spacing={{ xs: 0.5, sm: 2 }}
      alignItems={{ xs: 'flex-start', sm: 'center' }}
      justifyContent="space-between"
      sx={{ py: 1, color: 'text.secondary' }}
    >
      <Stack direction="row" spacing={2} flexWrap="wrap" useFlexGap alignItems="center">
        <Typography variant="body2">
          {words} {words === 1 ? 'word' : 'words'} · {text.length} {text.length === 1 ? 'character' : 'characters'}
        </Typography>
        {lastRun && (
          <Typography variant="body2" data-testid="last-run">
            Last suggestion: {lastRun.completionTokens} tokens in {(lastRun.totalMs / 1000).toFixed(2)} s
            {lastRun.tokensPerSecond !== null ? ` (${lastRun.tokensPerSecond.toFixed(1)} tokens/s)` : ''}
            {lastRun.truncated ? ' · start of the text cut to fit the model' : ''}
          </Typography>
        )}
        {lastRun?.seed !== null && lastRun?.seed !== undefined && (
          <Box component="span">
            <Typography variant="body2" component="span">
              seed {lastRun.seed}{' '}
            </Typography>
            <Button size="small" onClick={() => onReuseSeed(lastRun.seed as number)}>
              Reuse seed
            </Button>
          </Box>
        )}
      </Stack>
      <HealthIndicator health={health} />
    </Stack>
  );
}
