/** Polls GET /health so the status bar can say which model answers, or why none does. */
import { useEffect, useState } from 'react';
import { HEALTH_POLL_MS } from '@/config/app';
import { getHealth, type Health } from '../api/health';

export type HealthState = Health | { state: 'checking' };

export function useHealth(intervalMs: number = HEALTH_POLL_MS): HealthState {
  const [health, setHealth] = useState<HealthState>({ state: 'checking' });
  useEffect(() => {
    const controller = new AbortController();
    const check = () =>
      getHealth(controller.signal).then(
        (result) => setHealth(result),
        () => undefined, // only an abort on unmount lands here
      );
    void check();
    const timer = window.setInterval(check, intervalMs);
    return () => {
      window.clearInterval(timer);
      controller.abort();
    };
  }, [intervalMs]);
  return health;
}
