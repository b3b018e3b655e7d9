/**
 * Generation settings the editor offers: their defaults and bounds.
 * The bounds are the slider ranges of the UI; the server enforces its own (wider) limits.
 */
export type GenerationSettings = {
  /** How many tokens (word pieces) one suggestion may have. */
  maxNewTokens: number;
  /** 0 = always the most likely next token; higher = more surprising text. */
  temperature: number;
  /** Sample only from the most likely tokens that together cover this probability. */
  topP: number;
  /** Same seed + same text + same settings = same suggestion. null = a new draw each time. */
  seed: number | null;
  /** How many alternative suggestions to ask for at once. */
  alternatives: number;
};

export const DEFAULT_SETTINGS: GenerationSettings = {
  maxNewTokens: 40,
  temperature: 0.8,
  topP: 0.95,
  seed: null,
  alternatives: 1,
};

export const SETTING_BOUNDS = {
  maxNewTokens: { min: 1, max: 256, step: 1 },
  temperature: { min: 0, max: 2, step: 0.05 },
  topP: { min: 0.05, max: 1, step: 0.05 },
  alternatives: { min: 1, max: 4, step: 1 },
  // The API accepts any integer; keep seeds within what JSON and Python agree on exactly.
  seed: { min: 0, max: Number.MAX_SAFE_INTEGER },
} as const;
