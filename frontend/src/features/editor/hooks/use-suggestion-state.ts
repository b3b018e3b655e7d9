/**
 * The suggestion on show: React state to render it, and a ref that keyboard handlers and stream
 * updates, which interleave between renders, read and write so that each sees the very latest one.
 */
import { useCallback, useRef, useState } from 'react';
import type { Suggestion } from '../model/suggestion';

export function useSuggestionState() {
  const [suggestion, setSuggestion] = useState<Suggestion | null>(null);
  const suggestionRef = useRef<Suggestion | null>(null);
  const updateSuggestion = useCallback((change: (current: Suggestion | null) => Suggestion | null) => {
    const next = change(suggestionRef.current);
    suggestionRef.current = next;
    setSuggestion(next);
  }, []);
  return { suggestion, suggestionRef, updateSuggestion };
}
