/** The confidence view's tooltip over the model token under the pointer: how likely the model found it. */
import { Paper, Popper, Typography } from '@mui/material';
import type { TokenHover } from '../hooks/use-token-hover';

function describe(probability: number | null): string {
  if (probability === null) return 'probability unknown';
  return `${(probability * 100).toFixed(probability < 0.01 ? 2 : 1)}% likely`;
}

export function TokenProbabilityTooltip({ hover }: { hover: TokenHover | null }) {
  return (
    <Popper
      open={hover !== null}
      anchorEl={hover ? { getBoundingClientRect: () => hover.rect } : null}
      placement="top"
      sx={{ pointerEvents: 'none', zIndex: (theme) => theme.zIndex.tooltip }}
    >
      <Paper elevation={4} sx={{ px: 1, py: 0.5 }}>
        <Typography variant="caption">
          {describe(hover?.probability ?? null)}
          {hover ? ` · “${hover.text}”` : ''}
        </Typography>
      </Paper>
    </Popper>
  );
}
