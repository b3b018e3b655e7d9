/** Light and dark themes; CSS variables switch between them by the system's prefers-color-scheme. */
import { createTheme } from '@mui/material/styles';

export const theme = createTheme({
  cssVariables: { colorSchemeSelector: 'media' },
  colorSchemes: {
    light: { palette: { primary: { main: '#3949ab' }, background: { default: '#f6f7fb' } } },
    dark: { palette: { primary: { main: '#9fa8da' } } },
  },
  shape: { borderRadius: 8 },
  typography: { button: { textTransform: 'none' } },
});
