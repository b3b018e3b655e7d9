/**
 * What the polite live region says about the suggestion: the offer as it was made. It changes when
 * the writer asks for one, when one is complete and when the writer switches alternative; never per
 * streamed token, nor as the writer types through it or takes it word by word. Automatic
 * suggestions are announced only once complete.
 */
import type { Suggestion } from './suggestion';

export function announcementFor(suggestion: Suggestion | null, run: { generating: boolean; automatic: boolean }): string {
  if (run.generating && !run.automatic) return 'Writing a suggestion…';
  if (!suggestion || suggestion.streaming) return '';
  const text = suggestion.alternatives[suggestion.active]?.text ?? '';
  if (!text.startsWith(suggestion.lead) || text.length <= suggestion.lead.length) return '';
  const count = suggestion.alternatives.length;
  const position = count > 1 ? ` ${suggestion.active + 1} of ${count}` : '';
  return `Suggestion${position}: ${text.slice(suggestion.lead.length).trimStart()}. Press Tab to accept, Escape to dismiss.`;
}
