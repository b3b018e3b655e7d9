/**
 * Runs one streamed completion at a time and holds the resulting suggestion.
 * Stop, dismiss and a new request abort the fetch, which closes the connection so the server stops too.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { GenerationSettings } from '@/config/generation';
import { ApiError, isAbortError } from '@/lib/api-client';
import { buildGenerateRequest, streamCompletion } from '../api/generate';
import { addToken, finishSuggestion, ghostText, startSuggestion, stopStreaming, type Suggestion } from '../model/suggestion';

/** What the status bar reports about the last finished completion. */
export type RunStats = {
  completionTokens: number;
  totalMs: number;
  tokensPerSecond: number | null;
  model: string | null;
  seed: number | null;
  truncated: boolean;
};

function hasAnyText(suggestion: Suggestion): boolean {
  return suggestion.alternatives.some((alternative) => alternative.text.length > suggestion.consumed);
}

export function useCompletion() {
  const [suggestion, setSuggestionState] = useState<Suggestion | null>(null);
  const [generating, setGenerating] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [lastRun, setLastRun] = useState<RunStats | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  // Keyboard actions and stream updates interleave; the ref lets each see the very latest suggestion.
  const suggestionRef = useRef<Suggestion | null>(null);
  const controllerRef = useRef<AbortController | null>(null);

  const updateSuggestion = useCallback((change: (current: Suggestion | null) => Suggestion | null) => {
    const next = change(suggestionRef.current);
    suggestionRef.current = next;
    setSuggestionState(next);
  }, []);

  const abortRunning = useCallback(() => {
    controllerRef.current?.abort();
    controllerRef.current = null;
    setGenerating(false);
  }, []);

  const stop = useCallback(() => {
    abortRunning();
    // Keep what already streamed: the writer may still want it.
    updateSuggestion((current) => (current && hasAnyText(current) ? stopStreaming(current) : null));
  }, [abortRunning, updateSuggestion]);

  const dismiss = useCallback(() => {
    abortRunning();
    updateSuggestion(() => null);
  }, [abortRunning, updateSuggestion]);

  const start = useCallback(
    async (prompt: string, anchor: number, settings: GenerationSettings) => {
      abortRunning();
      const controller = new AbortController();
      controllerRef.current = controller;
      setGenerating(true);
      setError(null);
      setNotice(null);
      updateSuggestion(() => startSuggestion(anchor, settings.alternatives));
      const isCurrent = () => controllerRef.current === controller && !controller.signal.aborted;
      try {
        for await (const update of streamCompletion(buildGenerateRequest(prompt, settings), controller.signal)) {
          if (!isCurrent()) break;
          if (update.kind === 'token') {
            updateSuggestion((current) => current && addToken(current, update.index, { text: update.text, logprob: update.logprob }));
          } else {
            updateSuggestion((current) => {
              const finished = current && finishSuggestion(current, update.completions);
              return finished && hasAnyText(finished) ? finished : null;
            });
            if (!update.completions.some((completion) => completion.text.length > 0)) {
              setNotice('The model ended the text here and suggested nothing. Try a higher temperature or more text.');
            }
            const seconds = update.timings.totalMs / 1000;
            setLastRun({
              completionTokens: update.completionTokens,
              totalMs: update.timings.totalMs,
              tokensPerSecond: seconds > 0 ? update.completionTokens / seconds : null,
              model: update.model,
              seed: update.seed,
              truncated: update.truncated,
            });
          }
        }
      } catch (caught) {
        if (isCurrent() && !isAbortError(caught)) {
          setError(
            caught instanceof ApiError
              ? caught
              : new ApiError(`Unexpected error: ${caught instanceof Error ? caught.message : String(caught)}`, { type: 'client' }),
          );
          updateSuggestion((current) => (current && hasAnyText(current) ? stopStreaming(current) : null));
        }
      } finally {
        if (controllerRef.current === controller) {
          controllerRef.current = null;
          setGenerating(false);
          updateSuggestion((current) => (current?.streaming ? stopStreaming(current) : current));
        }
      }
    },
    [abortRunning, updateSuggestion],
  );

  useEffect(() => () => controllerRef.current?.abort(), []);

  return {
    suggestion,
    suggestionRef,
    ghost: suggestion ? ghostText(suggestion) : '',
    generating,
    error,
    clearError: useCallback(() => setError(null), []),
    notice,
    clearNotice: useCallback(() => setNotice(null), []),
    lastRun,
    start,
    stop,
    dismiss,
    updateSuggestion,
  };
}
