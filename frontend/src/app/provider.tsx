/** Everything the app needs around it: theme, CSS baseline, and a last-resort error boundary. */
import { CssBaseline, ThemeProvider } from '@mui/material';
import { Component, type ErrorInfo, type ReactNode } from 'react';
import { theme } from './theme';

type BoundaryState = { error: Error | null };

/** A rendering bug must not blank the page: the draft is in localStorage, so a reload recovers it. */
class ErrorBoundary extends Component<{ children: ReactNode }, BoundaryState> {
  override state: BoundaryState = { error: null };

  static getDerivedStateFromError(error: Error): BoundaryState {
    return { error };
  }

  override componentDidCatch(error: Error, info: ErrorInfo) {
    console.error(error, info.componentStack);
  }

  override render() {
    if (this.state.error) {
      return (
        <main role="alert" style={{ padding: 24, fontFamily: 'system-ui, sans-serif' }}>
          <h1>Something went wrong in the editor.</h1>
          <p>Your draft is saved in this browser. Reload the page to continue.</p>
          <pre>{this.state.error.message}</pre>
        </main>
      );
    }
    return this.props.children;
  }
}

export function AppProvider({ children }: { children: ReactNode }) {
  return (
    <ErrorBoundary>
      <ThemeProvider theme={theme}>
        <CssBaseline enableColorScheme />
        {children}
      </ThemeProvider>
    </ErrorBoundary>
  );
}
