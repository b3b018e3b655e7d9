/** Content for screen readers only: kept in the accessibility tree, taking no space on screen. */
import { Box, type BoxProps } from '@mui/material';

const hidden = {
  position: 'absolute',
  width: '1px',
  height: '1px',
  margin: '-1px',
  padding: 0,
  border: 0,
  overflow: 'hidden',
  clip: 'rect(0 0 0 0)',
  whiteSpace: 'nowrap',
} as const;

export function VisuallyHidden({ sx, ...props }: BoxProps) {
  return <Box {...props} sx={[hidden, ...(Array.isArray(sx) ? sx : [sx])]} />;
}
