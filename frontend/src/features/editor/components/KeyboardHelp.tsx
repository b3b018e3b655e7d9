/** The line under the editor that lists its keyboard shortcuts; the textarea points to it with aria-describedby. */
import { Typography } from '@mui/material';
import { SHORTCUT_MODIFIER as mod } from '../model/shortcuts';

export function KeyboardHelp({ id, suggestOnPause }: { id: string; suggestOnPause: boolean }) {
  return (
    <Typography id={id} variant="caption" color="text.secondary" sx={{ mt: 0.5 }}>
      {suggestOnPause ? 'Pause typing for a suggestion · ' : ''}
      {mod}+Enter: suggest at the cursor · Tab: accept · {mod}+→: accept one word · Esc: stop or dismiss · Alt+] / Alt+[: next /
      previous alternative
    </Typography>
  );
}
