import { act, renderHook, waitFor } from '@testing-library/react';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import { HEALTH_OK, server } from '@/testing/server';
import { useHealth } from './use-health';

describe('useHealth', () => {
  it('polls, and follows the server from ok to unavailable to unreachable and back', async () => {
    const { result } = renderHook(() => useHealth(40, 40));
    await waitFor(() => expect(result.current.health).toEqual({ state: 'ok', model: 'distilgpt2-arxiv', quantization: 'int8', parameters: 81_912_576 }));

    server.use(http.get('*/health', () => HttpResponse.json({ status: 'error', reason: 'model.onnx is missing' }, { status: 503 })));
    await waitFor(() => expect(result.current.health).toEqual({ state: 'unavailable', reason: 'model.onnx is missing' }));

    server.use(http.get('*/health', () => HttpResponse.error()));
    await waitFor(() => expect(result.current.health).toEqual({ state: 'unavailable', reason: 'the server cannot be reached' }));

    server.use(http.get('*/health', () => HttpResponse.json(HEALTH_OK)));
    await waitFor(() => expect(result.current.health.state).toBe('ok'));
  });

  it('polls a server reported down at the retry pace until /health answers ok again', async () => {
    // Healthy servers are polled once an hour here, so only the retry poll can bring it back.
    const { result } = renderHook(() => useHealth(3_600_000, 40));
    await waitFor(() => expect(result.current.health.state).toBe('ok'));

    act(() => result.current.reportDown('Cannot reach the server.'));
    expect(result.current.health).toEqual({ state: 'unavailable', reason: 'Cannot reach the server.' });
    await waitFor(() => expect(result.current.health.state).toBe('ok'));
  });
});
