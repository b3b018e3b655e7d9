/**
 * Generation settings the editor offers: their defaults and bounds.
 * The defaults are the server's contract (generated from its /openapi.json); the bounds are the
 * slider ranges of the UI, which generate-contract.test.ts checks lie within the server's limits.
 */
import { GENERATE_REQUEST_FIELDS as FIELDS } from '@/config/generate-contract.generated';

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
  maxNewTokens: FIELDS.max_new_tokens.default,
  temperature: FIELDS.temperature.default,
  topP: FIELDS.top_p.default,
  seed: FIELDS.seed.default,
  alternatives: FIELDS.n.default,
};

export const SETTING_BOUNDS = {
  maxNewTokens: { min: 1, max: 256, step: 1 },
  temperature: { min: 0, max: 2, step: 0.05 },
  topP: { min: 0.05, max: 1, step: 0.05 },
  alternatives: { min: 1, max: 4, step: 1 },
  // The server's own seed range (it refused the seeds above 2^32 - 1 that this once allowed).
  seed: { min: FIELDS.seed.minimum, max: FIELDS.seed.maximum },
} as const;
