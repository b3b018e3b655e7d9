/**
 * A textarea that shows the suggestion as grey ghost text at the cursor, and (in the confidence
 * view) shades model-written tokens by probability.
 *
 * How: a mirror div in normal flow renders text-before-cursor + ghost + text-after-cursor with the
 * textarea's exact font, padding and wrapping; the real textarea lies on top of it with transparent
 * text, so the caret, selection and input stay native. The mirror sets the height and the textarea
 * never scrolls, so the two cannot drift apart when the text wraps or grows.
 */
import { styled, type Theme } from '@mui/material/styles';
import { forwardRef, useMemo, useRef, type KeyboardEvent, type ReactNode } from 'react';
import { useTokenHover } from '../hooks/use-token-hover';
import { probabilityColor } from '../model/confidence';
import { spanProbability, type ModelSpan } from '../model/model-spans';
import { TokenProbabilityTooltip } from './TokenProbabilityTooltip';

// Everything that decides where a character lands must be identical in both layers.
const sharedText = {
  margin: 0,
  padding: '16px',
  border: 0,
  boxSizing: 'border-box',
  width: '100%',
  fontFamily: '"Source Serif 4", "Georgia", "Times New Roman", serif',
  fontSize: '1.0625rem',
  fontWeight: 400,
  lineHeight: 1.65,
  letterSpacing: 'normal',
  tabSize: 4,
  whiteSpace: 'pre-wrap',
  overflowWrap: 'break-word',
  wordBreak: 'normal',
  textAlign: 'start',
  textTransform: 'none',
} as const;

// The theme switches light/dark through CSS variables, so styles must read theme.vars, not the
// light palette's literal colours.
const palette = (theme: Theme) => (theme.vars ?? theme).palette;

const Frame = styled('div')(({ theme }) => ({
  position: 'relative',
  borderRadius: theme.shape.borderRadius,
  border: `1px solid ${palette(theme).divider}`,
  backgroundColor: palette(theme).background.paper,
  '&:focus-within': { outline: `2px solid ${palette(theme).primary.main}`, outlineOffset: -1 },
}));

const Mirror = styled('div')(({ theme }) => ({
  ...sharedText,
  minHeight: '18rem',
  color: palette(theme).text.primary,
}));

const Input = styled('textarea')(({ theme }) => ({
  ...sharedText,
  position: 'absolute',
  inset: 0,
  height: '100%',
  overflow: 'hidden',
  resize: 'none',
  background: 'transparent',
  color: 'transparent',
  caretColor: palette(theme).text.primary,
  outline: 'none',
  '&::placeholder': { color: palette(theme).text.secondary, opacity: 1 },
  '&::selection': { backgroundColor: theme.alpha(palette(theme).primary.main, 0.3) },
}));

const Ghost = styled('span')(({ theme }) => ({
  color: palette(theme).text.disabled,
  backgroundColor: theme.alpha(palette(theme).text.primary, 0.05),
}));

export type GhostTextareaProps = {
  value: string;
  ghost: string;
  anchor: number;
  spans: readonly ModelSpan[];
  confidenceView: boolean;
  placeholder?: string;
  describedBy?: string;
  onChange: (value: string, caret: number) => void;
  onKeyDown: (event: KeyboardEvent<HTMLTextAreaElement>) => void;
  onSelectionChange: (start: number, end: number) => void;
  onPaste: () => void;
  onCompositionStart: () => void;
  onCompositionEnd: () => void;
};

/** Plain text between `from` and `to`, with model spans shaded when the confidence view is on. */
function renderRange(value: string, from: number, to: number, spans: readonly ModelSpan[], shaded: boolean): ReactNode[] {
  if (!shaded) return from < to ? [value.slice(from, to)] : [];
  const nodes: ReactNode[] = [];
  let cursor = from;
  for (const span of spans) {
    const start = Math.max(span.start, from);
    const end = Math.min(span.end, to);
    if (start >= end) continue;
    if (cursor < start) nodes.push(value.slice(cursor, start));
    const probability = spanProbability(span);
    nodes.push(
      <span
        key={`${span.start}-${start}`}
        data-model-token=""
        data-probability={probability ?? ''}
        style={{ backgroundColor: probability === null ? undefined : probabilityColor(probability), borderRadius: 2 }}
      >
        {value.slice(start, end)}
      </span>,
    );
    cursor = end;
  }
  if (cursor < to) nodes.push(value.slice(cursor, to));
  return nodes;
}

export const GhostTextarea = forwardRef<HTMLTextAreaElement, GhostTextareaProps>(function GhostTextarea(
  { value, ghost, anchor, spans, confidenceView, placeholder, describedBy, onChange, onKeyDown, onSelectionChange, ...input },
  ref,
) {
  const mirrorRef = useRef<HTMLDivElement>(null);
  const { hover, onMouseMove, onMouseLeave } = useTokenHover(mirrorRef, confidenceView);
  const at = Math.min(Math.max(anchor, 0), value.length);
  const showGhost = ghost.length > 0;

  const mirrorContent = useMemo(
    () => [
      ...renderRange(value, 0, showGhost ? at : value.length, spans, confidenceView),
      ...(showGhost
        ? [
            <Ghost key="ghost" data-testid="ghost-text">
              {ghost}
            </Ghost>,
            ...renderRange(value, at, value.length, spans, confidenceView),
          ]
        : []),
    ],
    [value, at, ghost, showGhost, spans, confidenceView],
  );

  return (
    <Frame>
      <Mirror ref={mirrorRef} aria-hidden="true" data-testid="editor-mirror">
        {mirrorContent}
        {/* A trailing newline needs a character after it to take up its line, as it does in the textarea. */}
        {'\u200b'}
      </Mirror>
      <Input
        ref={ref}
        value={value}
        placeholder={placeholder}
        aria-label="Abstract draft"
        aria-describedby={describedBy}
        spellCheck
        onChange={(event) => onChange(event.target.value, event.target.selectionStart)}
        onKeyDown={onKeyDown}
        onSelect={(event) => onSelectionChange(event.currentTarget.selectionStart, event.currentTarget.selectionEnd)}
        onPaste={input.onPaste}
        onCompositionStart={input.onCompositionStart}
        onCompositionEnd={input.onCompositionEnd}
        onMouseMove={onMouseMove}
        onMouseLeave={onMouseLeave}
      />
      <TokenProbabilityTooltip hover={hover} />
    </Frame>
  );
});
