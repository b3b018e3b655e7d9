/**
 * The one streamed run in progress: its AbortController and whether suggest-on-pause started it.
 * Beginning a run aborts the one before it, and unmounting aborts the last, so that the closed
 * connection stops the server as well.
 */
import { useCallback, useEffect, useRef, useState } from 'react';

export function useRunControl() {
  /** The run in progress: null, or whether suggest-on-pause started it. */
  const [running, setRunning] = useState<{ automatic: boolean } | null>(null);
  const controllerRef = useRef<AbortController | null>(null);

  const abort = useCallback(() => {
    controllerRef.current?.abort();
    controllerRef.current = null;
    setRunning(null);
  }, []);

  const begin = useCallback(
    (automatic: boolean) => {
      abort();
      const controller = new AbortController();
      controllerRef.current = controller;
      setRunning({ automatic });
      return controller;
    },
    [abort],
  );

  /** A run replaced or aborted (by any edit that dismissed its suggestion) must not touch the suggestion again. */
  const isCurrent = useCallback((controller: AbortController) => controllerRef.current === controller && !controller.signal.aborted, []);

  /** Ends `controller`'s run if no other run replaced it; whether it did. */
  const end = useCallback((controller: AbortController) => {
    if (controllerRef.current !== controller) return false;
    controllerRef.current = null;
    setRunning(null);
    return true;
  }, []);

  useEffect(() => () => controllerRef.current?.abort(), []);

  return { running, abort, begin, isCurrent, end };
}
