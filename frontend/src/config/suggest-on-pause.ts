/**
 * Suggest-on-pause: the writer's switch and delay (persisted), and the shape of the short
 * suggestion it asks for. Ctrl+Enter and the Generate button use the panel's settings instead.
 */
export type SuggestOnPause = {
  /** Off = the editor suggests only when asked (Ctrl+Enter, the Generate button). */
  enabled: boolean;
  /** How long the writer must stop typing before a suggestion is asked for. */
  delayMs: number;
};

// 400 ms: see docs/editor.md, "Choosing the delay" (measured request counts and latency).
export const DEFAULT_SUGGEST_ON_PAUSE: SuggestOnPause = { enabled: true, delayMs: 400 };

export const PAUSE_DELAY_BOUNDS = { min: 150, max: 2000, step: 50 } as const;

/** One thought, fast: at most this many tokens, ending before the end of the sentence. */
export const PAUSE_SUGGESTION = {
  maxNewTokens: 12,
  // The API leaves a stop string out of the text, so the suggestion ends with the sentence's last word.
  stop: ['. ', '? ', '! ', '\n'],
} as const;

/** How long to wait after a 429 that did not say (it normally sends Retry-After). */
export const DEFAULT_RETRY_AFTER_S = 5;
