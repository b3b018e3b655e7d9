/**
 * Polls GET /health so the status bar can say which model answers, or why none does, and so
 * suggest-on-pause knows when to hold back. A server found down (here or by a failed request,
 * reportDown) is polled more often, to notice it recover.
 */
import { useCallback, useEffect, useState } from 'react';
import { HEALTH_POLL_MS, HEALTH_RETRY_MS } from '@/config/app';
import { getHealth, type Health } from '../api/health';

export type HealthState = Health | { state: 'checking' };

export function useHealth(intervalMs: number = HEALTH_POLL_MS, retryMs: number = HEALTH_RETRY_MS) {
  const [health, setHealth] = useState<HealthState>({ state: 'checking' });
  const healthy = health.state === 'ok';

  useEffect(() => {
    const controller = new AbortController();
    const check = () =>
      getHealth(controller.signal).then(
        (result) => setHealth(result),
        () => undefined, // only an abort on unmount lands here
      );
    const timer = window.setInterval(check, healthy ? intervalMs : retryMs);
    return () => {
      window.clearInterval(timer);
      controller.abort();
    };
  }, [healthy, intervalMs, retryMs]);

  // The first answer is wanted at once, not after the first interval.
  useEffect(() => {
    const controller = new AbortController();
    getHealth(controller.signal).then(setHealth, () => undefined);
    return () => controller.abort();
  }, []);

  /** A request found the server down: say so until a poll finds it healthy again. */
  const reportDown = useCallback((reason: string) => setHealth({ state: 'unavailable', reason }), []);

  return { health, reportDown };
}
