import { http, HttpResponse } from 'msw';
import { describe, expect, it, vi } from 'vitest';
import { server, sseResponse, chunkedStream } from '@/testing/server';
import { ApiError, SseParser, fetchJson, postEventStream, type ServerSentEvent } from './api-client';

const encoder = new TextEncoder();

/** Feeds `bytes` to a fresh parser cut at the given byte offsets and returns every event. */
function parseInPieces(bytes: Uint8Array, cuts: number[]): ServerSentEvent[] {
  const parser = new SseParser();
  const events: ServerSentEvent[] = [];
  let previous = 0;
  for (const cut of [...cuts, bytes.length]) {
    events.push(...parser.push(bytes.slice(previous, cut)));
    previous = cut;
  }
  events.push(...parser.end());
  return events;
}

// Multi-byte characters of every UTF-8 length (2, 3 and 4 bytes), CRLF and CR line ends, a comment.
const STREAM =
  ': keep-alive\r\n' +
  'event: token\r\ndata: {"index":0,"text":" é","logprob":-0.1}\r\n\r\n' +
  'event: token\rdata: {"index":0,"text":" — 🙂 deep","logprob":-2}\r\r' +
  'event: done\ndata: {"completions":[{"text":" é — 🙂 deep",\ndata: "finish_reason":"length"}]}\n\n';

const EXPECTED: ServerSentEvent[] = [
  { event: 'token', data: '{"index":0,"text":" é","logprob":-0.1}' },
  { event: 'token', data: '{"index":0,"text":" — 🙂 deep","logprob":-2}' },
  { event: 'done', data: '{"completions":[{"text":" é — 🙂 deep",\n"finish_reason":"length"}]}' },
];

describe('SseParser', () => {
  const bytes = encoder.encode(STREAM);

  it('parses the whole stream in one chunk', () => {
    expect(parseInPieces(bytes, [])).toEqual(EXPECTED);
  });

  it.each(Array.from({ length: bytes.length - 1 }, (_, i) => i + 1))('gives the same events when cut at byte %i', (cut) => {
    expect(parseInPieces(bytes, [cut])).toEqual(EXPECTED);
  });

  it('gives the same events when fed one byte at a time', () => {
    expect(parseInPieces(bytes, Array.from({ length: bytes.length - 1 }, (_, i) => i + 1))).toEqual(EXPECTED);
  });

  it.each([
    ['an event without its closing blank line', 'event: token\ndata: {"a":1}\n', []],
    ['a data line without a space after the colon', 'data:{"a":1}\n\n', [{ event: 'message', data: '{"a":1}' }]],
    ['an event with no data lines', 'event: token\n\n', []],
    ['a field without a colon', 'data\n\n', [{ event: 'message', data: '' }]],
    ['id and retry fields', 'id: 7\nretry: 10\nevent: done\ndata: {}\n\n', [{ event: 'done', data: '{}' }]],
    ['a byte order mark', '\ufeffevent: done\ndata: {}\n\n', [{ event: 'done', data: '{}' }]],
  ])('handles %s', (_, text, expected) => {
    expect(parseInPieces(encoder.encode(text), [])).toEqual(expected);
  });
});

describe('postEventStream', () => {
  it('yields events from a body streamed in awkward pieces', async () => {
    const bytes = encoder.encode(STREAM);
    // Cut inside the 4-byte emoji, inside "event:", and between CR and LF.
    const emoji = STREAM.indexOf('🙂');
    const cutPoints = [3, encoder.encode(STREAM.slice(0, emoji)).length + 2, encoder.encode(STREAM.slice(0, STREAM.indexOf('\r\n\r\n') + 1)).length];
    const cuts = [...cutPoints.sort((a, b) => a - b), bytes.length];
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        cuts.forEach((cut, i) => controller.enqueue(bytes.slice(i === 0 ? 0 : cuts[i - 1], cut)));
        controller.close();
      },
    });
    server.use(http.post('*/generate/stream', () => sseResponse(body)));
    const events: ServerSentEvent[] = [];
    for await (const event of postEventStream('/generate/stream', { text: 'x' })) events.push(event);
    expect(events).toEqual(EXPECTED);
  });

  it.each([
    [422, { error: { type: 'validation', field: 'top_p', message: 'top_p must be > 0 and <= 1, got 1.5' } }, 'top_p must be > 0 and <= 1, got 1.5', 'validation', 'top_p'],
    [429, { error: { type: 'overloaded', message: 'Too many requests in flight' } }, 'Too many requests in flight', 'overloaded', undefined],
    [503, { error: { type: 'unavailable', message: 'The model is still loading' } }, 'The model is still loading', 'unavailable', undefined],
  ])('throws the server message of a %i JSON error', async (status, body, message, type, field) => {
    server.use(http.post('*/generate/stream', () => HttpResponse.json(body, { status, headers: { 'Retry-After': '3' } })));
    const error = await postEventStream('/generate/stream', {}).next().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ message, status, type, field, retryAfterSeconds: 3 });
  });

  it('explains an error response that is not JSON by its status', async () => {
    server.use(http.post('*/generate/stream', () => new HttpResponse('<html>Bad gateway</html>', { status: 502 })));
    await expect(postEventStream('/generate/stream', {}).next()).rejects.toMatchObject({ message: 'The server answered HTTP 502.', status: 502 });
  });

  it('turns a network failure into a readable error', async () => {
    server.use(http.post('*/generate/stream', () => HttpResponse.error()));
    await expect(postEventStream('/generate/stream', {}).next()).rejects.toMatchObject({
      type: 'network',
      message: 'Cannot reach the server. Check that it is running and try again.',
    });
  });

  it('cancels the response body when the consumer stops early', async () => {
    let cancelled = false;
    // Straight to fetch: MSW copies mocked bodies, which hides the cancel from the source stream.
    const body = chunkedStream(['event: token\ndata: {}\n\n', 'event: token\ndata: {}\n\n'], { onCancel: () => (cancelled = true) });
    vi.spyOn(globalThis, 'fetch').mockResolvedValue(new Response(body, { headers: { 'Content-Type': 'text/event-stream' } }));
    for await (const event of postEventStream('/generate/stream', {})) {
      expect(event.event).toBe('token');
      break;
    }
    await expect.poll(() => cancelled).toBe(true);
  });
});

describe('fetchJson', () => {
  it('returns status and body without throwing on 503', async () => {
    server.use(http.get('*/health', () => HttpResponse.json({ status: 'loading', reason: 'loading model' }, { status: 503 })));
    await expect(fetchJson('/health')).resolves.toEqual({ status: 503, body: { status: 'loading', reason: 'loading model' } });
  });
});
