/**
 * Runs one streamed completion at a time and holds the resulting suggestion.
 * Stop, dismiss and a new request abort the fetch, which closes the connection so the server stops too.
 * An automatic run (suggest-on-pause) reports its failure to the caller instead of the writer.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { isAbortError, toApiError, type ApiError } from '@/lib/api-client';
import { streamCompletion, type DoneUpdate, type GenerateRequest } from '../api/generate';
import { runStats, type RunStats } from '../model/run-stats';
import { addToken, finishSuggestion, ghostText, hasAnyText, keepStreamed, startSuggestion, stopStreaming } from '../model/suggestion';
import { useSuggestionState } from './use-suggestion-state';

export type RunOutcome = { kind: 'finished' } | { kind: 'aborted' } | { kind: 'failed'; error: ApiError };

export type StartOptions = {
  /** Asked for by suggest-on-pause, not by the writer: no error message, no notice. */
  automatic?: boolean;
  /** What the writer typed at the anchor after the request's text, which the suggestion must begin with. */
  lead?: string;
};

const ABORTED: RunOutcome = { kind: 'aborted' };

export function useCompletion() {
  const { suggestion, suggestionRef, updateSuggestion } = useSuggestionState();
  /** The run in progress: null, or whether suggest-on-pause started it. */
  const [running, setRunning] = useState<{ automatic: boolean } | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [lastRun, setLastRun] = useState<RunStats | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const controllerRef = useRef<AbortController | null>(null);

  const abortRunning = useCallback(() => {
    controllerRef.current?.abort();
    controllerRef.current = null;
    setRunning(null);
  }, []);

  const stop = useCallback(() => {
    abortRunning();
    // Keep what already streamed: the writer may still want it.
    updateSuggestion(keepStreamed);
  }, [abortRunning, updateSuggestion]);

  const dismiss = useCallback(() => {
    abortRunning();
    updateSuggestion(() => null);
  }, [abortRunning, updateSuggestion]);

  const finish = useCallback(
    (done: DoneUpdate, automatic: boolean) => {
      updateSuggestion((current) => {
        const finished = current && finishSuggestion(current, done.completions);
        return finished && hasAnyText(finished) ? finished : null;
      });
      if (!automatic && !done.completions.some((completion) => completion.text.length > 0)) {
        setNotice('The model ended the text here and suggested nothing. Try a higher temperature or more text.');
      }
      setLastRun(runStats(done));
    },
    [updateSuggestion],
  );

  const start = useCallback(
    async (request: GenerateRequest, anchor: number, { automatic = false, lead = '' }: StartOptions = {}): Promise<RunOutcome> => {
      abortRunning();
      const controller = new AbortController();
      controllerRef.current = controller;
      setRunning({ automatic });
      if (!automatic) {
        setError(null);
        setNotice(null);
      }
      updateSuggestion(() => startSuggestion(anchor, request.n, lead));
      // A run replaced or aborted (by any edit that dismissed its suggestion) never touches the suggestion again.
      const isCurrent = () => controllerRef.current === controller && !controller.signal.aborted;
      try {
        for await (const update of streamCompletion(request, controller.signal)) {
          if (!isCurrent()) return ABORTED;
          if (update.kind === 'token') {
            updateSuggestion((current) => current && addToken(current, update.index, { text: update.text, logprob: update.logprob }));
          } else {
            finish(update, automatic);
          }
        }
        return { kind: 'finished' };
      } catch (caught) {
        if (!isCurrent() || isAbortError(caught)) return ABORTED;
        const failure = toApiError(caught);
        if (!automatic) setError(failure);
        updateSuggestion(keepStreamed);
        return { kind: 'failed', error: failure };
      } finally {
        if (controllerRef.current === controller) {
          controllerRef.current = null;
          setRunning(null);
          updateSuggestion((current) => (current?.streaming ? stopStreaming(current) : current));
        }
      }
    },
    [abortRunning, finish, updateSuggestion],
  );

  useEffect(() => () => controllerRef.current?.abort(), []);

  return {
    suggestion,
    suggestionRef,
    ghost: suggestion ? ghostText(suggestion) : '',
    generating: running !== null,
    /** The run in progress was started by suggest-on-pause (the toolbar stays quiet for it). */
    automatic: running?.automatic ?? false,
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

export type Completion = ReturnType<typeof useCompletion>;
