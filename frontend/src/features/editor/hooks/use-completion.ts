/**
 * Runs one streamed completion at a time and holds the resulting suggestion.
 * Stop, dismiss and a new request abort the fetch, which closes the connection so the server stops too.
 * An automatic run (suggest-on-pause) reports its failure to the caller instead of the writer.
 */
import { useCallback, useState } from 'react';
import { isAbortError, toApiError, type ApiError } from '@/lib/api-client';
import { streamCompletion, type DoneUpdate, type GenerateRequest, type TokenUpdate } from '../api/generate';
import { runStats, type RunStats } from '../model/run-stats';
import { addToken, finishSuggestion, hasAnyText, keepStreamed, startSuggestion, stopStreaming } from '../model/suggestion';
import { useRunControl } from './use-run-control';
import { useSuggestionState } from './use-suggestion-state';

export type RunOutcome = { kind: 'finished' } | { kind: 'aborted' } | { kind: 'failed'; error: ApiError };

export type StartOptions = {
  /** Asked for by suggest-on-pause, not by the writer: no error message, no notice. */
  automatic?: boolean;
  /** What the writer typed at the anchor after the request's text, which the suggestion must begin with. */
  lead?: string;
};

/** The notice for a run the writer asked for whose alternatives all came back empty. */
const NOTHING_SUGGESTED = 'The model ended the text here and suggested nothing. Try a higher temperature or more text.';
const FINISHED: RunOutcome = { kind: 'finished' };
const ABORTED: RunOutcome = { kind: 'aborted' };

type StreamHandlers = {
  onToken: (update: TokenUpdate) => void;
  onDone: (update: DoneUpdate) => void;
  /** False once the run was replaced or aborted: nothing more of its stream is handed on. */
  isCurrent: () => boolean;
};

/** Hands one run's stream to its handlers until it ends, is replaced or aborted, or fails. */
async function followStream(request: GenerateRequest, signal: AbortSignal, { onToken, onDone, isCurrent }: StreamHandlers): Promise<RunOutcome> {
  try {
    for await (const update of streamCompletion(request, signal)) {
      if (!isCurrent()) return ABORTED;
      if (update.kind === 'token') onToken(update);
      else onDone(update);
    }
    return FINISHED;
  } catch (caught) {
    if (!isCurrent() || isAbortError(caught)) return ABORTED;
    return { kind: 'failed', error: toApiError(caught) };
  }
}

/** What the writer is told about their own runs: the error of a failed one, the notice of an empty one. */
function useRunMessages() {
  const [error, setError] = useState<ApiError | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const clearError = useCallback(() => setError(null), []);
  const clearNotice = useCallback(() => setNotice(null), []);
  const clearBoth = useCallback(() => {
    setError(null);
    setNotice(null);
  }, []);
  return { error, setError, clearError, notice, setNotice, clearNotice, clearBoth };
}

export function useCompletion() {
  const { suggestion, suggestionRef, updateSuggestion } = useSuggestionState();
  const { running, abort, begin, isCurrent, end } = useRunControl();
  const { error, setError, clearError, notice, setNotice, clearNotice, clearBoth } = useRunMessages();
  const [lastRun, setLastRun] = useState<RunStats | null>(null);

  const stop = useCallback(() => {
    abort();
    // Keep what already streamed: the writer may still want it.
    updateSuggestion(keepStreamed);
  }, [abort, updateSuggestion]);

  const dismiss = useCallback(() => {
    abort();
    updateSuggestion(() => null);
  }, [abort, updateSuggestion]);

  const finish = useCallback(
    (done: DoneUpdate, automatic: boolean) => {
      updateSuggestion((current) => {
        const finished = current && finishSuggestion(current, done.completions);
        return finished && hasAnyText(finished) ? finished : null;
      });
      if (!automatic && !done.completions.some((completion) => completion.text.length > 0)) setNotice(NOTHING_SUGGESTED);
      setLastRun(runStats(done));
    },
    [setNotice, updateSuggestion],
  );

  const start = useCallback(
    async (request: GenerateRequest, anchor: number, { automatic = false, lead = '' }: StartOptions = {}): Promise<RunOutcome> => {
      const controller = begin(automatic);
      if (!automatic) clearBoth();
      updateSuggestion(() => startSuggestion(anchor, request.n, lead));
      const outcome = await followStream(request, controller.signal, {
        onToken: (update) => updateSuggestion((current) => current && addToken(current, update.index, { text: update.text, logprob: update.logprob })),
        onDone: (update) => finish(update, automatic),
        isCurrent: () => isCurrent(controller),
      });
      if (outcome.kind === 'failed') {
        if (!automatic) setError(outcome.error);
        updateSuggestion(keepStreamed);
      }
      if (end(controller)) updateSuggestion((current) => (current?.streaming ? stopStreaming(current) : current));
      return outcome;
    },
    [begin, isCurrent, end, clearBoth, setError, finish, updateSuggestion],
  );

  return {
    suggestion,
    suggestionRef,
    generating: running !== null,
    /** The run in progress was started by suggest-on-pause (the toolbar stays quiet for it). */
    automatic: running?.automatic ?? false,
    error,
    clearError,
    notice,
    clearNotice,
    lastRun,
    start,
    stop,
    dismiss,
    updateSuggestion,
  };
}

export type Completion = ReturnType<typeof useCompletion>;
