/** The confidence view's key: the probability colours, and how sure the model was over the accepted text. */
import { Box, Stack, Typography } from '@mui/material';
import { useMemo } from 'react';
import { confidenceSummary, probabilityColor, UNSURE_BELOW } from '../model/confidence';
import type { ModelSpan } from '../model/model-spans';

export function ConfidenceLegend({ spans }: { spans: readonly ModelSpan[] }) {
  const confidence = useMemo(() => confidenceSummary(spans), [spans]);

  return (
    <Stack direction="row" spacing={1} alignItems="center" flexWrap="wrap" useFlexGap sx={{ mt: 1 }} data-testid="confidence-legend">
      <Typography variant="caption">Model text shaded by probability:</Typography>
      {[0.02, 0.25, 0.6, 0.95].map((p) => (
        <Box key={p} component="span" sx={{ px: 0.75, borderRadius: 1, backgroundColor: probabilityColor(p), typography: 'caption' }}>
          {Math.round(p * 100)}%
        </Box>
      ))}
      <Typography variant="caption" color="text.secondary">
        {confidence
          ? `${confidence.tokens} model tokens, ${Math.round(confidence.mean * 100)}% likely on average, ${confidence.unsure} below ${Math.round(UNSURE_BELOW * 100)}%. Hover a word for its probability.`
          : 'No accepted model text yet.'}
      </Typography>
    </Stack>
  );
}
