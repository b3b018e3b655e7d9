/** GET /health: whether a model is loaded, and which. */
import { ApiError, fetchJson } from '@/lib/api-client';

export type Health =
  | { state: 'ok'; model: string; quantization: string | null; parameters: number | null }
  | { state: 'unavailable'; reason: string };

export async function getHealth(signal?: AbortSignal): Promise<Health> {
  let result: { status: number; body: unknown };
  try {
    result = await fetchJson('/health', { signal });
  } catch (error) {
    if (error instanceof ApiError) return { state: 'unavailable', reason: 'the server cannot be reached' };
    throw error;
  }
  const body = (result.body ?? {}) as Record<string, unknown>;
  if (result.status === 200 && body.status === 'ok') {
    return {
      state: 'ok',
      model: typeof body.model === 'string' ? body.model : 'unknown model',
      quantization: typeof body.quantization === 'string' ? body.quantization : null,
      parameters: typeof body.parameters === 'number' ? body.parameters : null,
    };
  }
  const reason =
    typeof body.reason === 'string'
      ? body.reason
      : typeof body.status === 'string'
        ? `status "${body.status}" (HTTP ${result.status})`
        : `HTTP ${result.status}`;
  return { state: 'unavailable', reason };
}
