/** The page: a header and the abstract editor, inside the app's providers. */
import { AppBar, Container, Toolbar, Typography } from '@mui/material';
import { AbstractEditor } from '@/features/editor/components/AbstractEditor';
import { AppProvider } from './provider';

export function App() {
  return (
    <AppProvider>
      <AppBar position="static" color="default" elevation={0} sx={{ borderBottom: 1, borderColor: 'divider' }}>
        <Toolbar variant="dense">
          <Typography variant="h6" component="h1" sx={{ fontSize: '1.1rem', fontWeight: 600 }}>
            Abstract autocomplete
          </Typography>
          <Typography variant="body2" color="text.secondary" sx={{ ml: 2, display: { xs: 'none', sm: 'block' } }}>
            A language model trained on arXiv machine-learning abstracts continues your text.
          </Typography>
        </Toolbar>
      </AppBar>
      <Container component="main" maxWidth="lg" sx={{ py: 2 }}>
        <AbstractEditor />
      </Container>
    </AppProvider>
  );
}
