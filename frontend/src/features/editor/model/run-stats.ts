/** What the status bar reports about the last finished completion, from its done event. */
import type { DoneUpdate } from '../api/generate';

export type RunStats = {
  completionTokens: number;
  totalMs: number;
  tokensPerSecond: number | null;
  model: string | null;
  seed: number | null;
  truncated: boolean;
};

export function runStats(done: DoneUpdate): RunStats {
  const seconds = done.timings.totalMs / 1000;
  return {
    completionTokens: done.completionTokens,
    totalMs: done.timings.totalMs,
    tokensPerSecond: seconds > 0 ? done.completionTokens / seconds : null,
    model: done.model,
    seed: done.seed,
    truncated: done.truncated,
  };
}
