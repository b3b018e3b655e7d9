/** The confidence view's arithmetic: the colour for a token's probability, and how sure the model was over the accepted text. */
import { spanProbability, type ModelSpan } from './model-spans';

/** Low probability = red, high = green; light enough that the text stays readable in both themes. */
export function probabilityColor(probability: number): string {
  return `hsla(${Math.round(120 * probability)}, 85%, 50%, ${0.18 + 0.3 * (1 - probability)})`;
}

/** Below this probability a token counts as one the model was unsure of. */
export const UNSURE_BELOW = 0.1;

export type ConfidenceSummary = { tokens: number; mean: number; unsure: number };

/** Over the model tokens whose probability is known; null when there are none. */
export function confidenceSummary(spans: readonly ModelSpan[]): ConfidenceSummary | null {
  const probabilities = spans.map(spanProbability).filter((p): p is number => p !== null);
  if (probabilities.length === 0) return null;
  const mean = probabilities.reduce((sum, p) => sum + p, 0) / probabilities.length;
  return { tokens: probabilities.length, mean, unsure: probabilities.filter((p) => p < UNSURE_BELOW).length };
}
