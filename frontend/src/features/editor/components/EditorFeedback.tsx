/** What the editor tells the writer besides the text: the screen-reader announcement, errors and notices. */
import { Alert, Snackbar } from '@mui/material';
import { VisuallyHidden } from '@/components/VisuallyHidden';
import type { ApiError } from '@/lib/api-client';

function errorText(error: ApiError): string {
  const retry = error.retryAfterSeconds !== undefined ? ` Try again in ${error.retryAfterSeconds} s.` : '';
  return `${error.message}${retry}`;
}

export type EditorFeedbackProps = {
  announcement: string;
  error: ApiError | null;
  notice: string | null;
  onCloseError: () => void;
  onCloseNotice: () => void;
};

export function EditorFeedback({ announcement, error, notice, onCloseError, onCloseNotice }: EditorFeedbackProps) {
  return (
    <>
      {/* Polite, and its text changes once per suggestion, not with every streamed token. */}
      <VisuallyHidden aria-live="polite" role="status">
        {announcement}
      </VisuallyHidden>
      <Snackbar open={error !== null} anchorOrigin={{ vertical: 'bottom', horizontal: 'center' }}>
        <Alert severity="error" variant="filled" onClose={onCloseError} sx={{ maxWidth: 640 }}>
          {error ? errorText(error) : ''}
        </Alert>
      </Snackbar>
      <Snackbar open={notice !== null} autoHideDuration={6000} onClose={onCloseNotice} anchorOrigin={{ vertical: 'bottom', horizontal: 'center' }}>
        <Alert severity="info" onClose={onCloseNotice}>
          {notice ?? ''}
        </Alert>
      </Snackbar>
    </>
  );
}
