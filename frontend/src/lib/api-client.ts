/**
 * The only module that talks HTTP: JSON requests, the API's error shape, and
 * Server-Sent Events read from a streaming fetch (EventSource cannot POST a body).
 */
import { API_BASE_URL } from '@/config/app';

/** Every failure a caller can show: the server's own error, or why it could not be reached. */
export class ApiError extends Error {
  readonly status: number | null;
  /** The API's error type ("validation", "overloaded", ...) or "network" / "http" / "stream". */
  readonly type: string;
  /** The request field a validation error is about. */
  readonly field: string | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(
    message: string,
    options: { status?: number | null; type: string; field?: string; retryAfterSeconds?: number },
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = options.status ?? null;
    this.type = options.type;
    this.field = options.field;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** Anything thrown while talking to the server, as an ApiError a caller can show. */
export function toApiError(caught: unknown): ApiError {
  if (caught instanceof ApiError) return caught;
  return new ApiError(`Unexpected error: ${caught instanceof Error ? caught.message : String(caught)}`, { type: 'client' });
}

export function isAbortError(error: unknown): boolean {
  return error instanceof DOMException && error.name === 'AbortError';
}

type ErrorBody = { error?: { type?: unknown; field?: unknown; message?: unknown } };

/** Builds an ApiError from the `{"error": {...}}` body the API sends, or from the bare status. */
export function apiErrorFromBody(body: unknown, status: number | null, retryAfterSeconds?: number): ApiError {
  const error = (body as ErrorBody | null)?.error;
  if (error && typeof error.message === 'string') {
    return new ApiError(error.message, {
      status,
      type: typeof error.type === 'string' ? error.type : 'http',
      field: typeof error.field === 'string' ? error.field : undefined,
      retryAfterSeconds,
    });
  }
  return new ApiError(status === null ? 'The server sent an error without a message.' : `The server answered HTTP ${status}.`, {
    status,
    type: 'http',
    retryAfterSeconds,
  });
}

async function errorFromResponse(response: Response): Promise<ApiError> {
  const retryAfter = Number.parseInt(response.headers.get('Retry-After') ?? '', 10);
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    // A proxy's HTML error page or an empty body: fall back to the status line.
  }
  return apiErrorFromBody(body, response.status, Number.isFinite(retryAfter) ? retryAfter : undefined);
}

async function send(path: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(`${API_BASE_URL}${path}`, init);
  } catch (error) {
    if (isAbortError(error)) throw error;
    throw new ApiError('Cannot reach the server. Check that it is running and try again.', { type: 'network' });
  }
}

/** GET/POST returning the parsed JSON body and status, without treating non-2xx as an error. */
export async function fetchJson(path: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
  const response = await send(path, { ...init, headers: { Accept: 'application/json', ...init.headers } });
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    // Non-JSON body: the caller decides from the status alone.
  }
  return { status: response.status, body };
}

export type ServerSentEvent = { event: string; data: string };

/**
 * Incremental parser for the text/event-stream format (WHATWG HTML, "Server-sent events").
 * Network chunks may split anywhere: inside a UTF-8 character, a field name, or a CRLF.
 */
export class SseParser {
  private readonly decoder = new TextDecoder('utf-8');
  private buffer = '';
  private eventType = '';
  private dataLines: string[] = [];

  push(chunk: Uint8Array): ServerSentEvent[] {
    // stream: true keeps an incomplete multi-byte character for the next chunk.
    this.buffer += this.decoder.decode(chunk, { stream: true });
    return this.drainLines(false);
  }

  /** The stream ended: an event without its closing blank line is dropped, as the spec says. */
  end(): ServerSentEvent[] {
    this.buffer += this.decoder.decode();
    const events = this.drainLines(true);
    this.buffer = '';
    this.eventType = '';
    this.dataLines = [];
    return events;
  }

  private drainLines(atEnd: boolean): ServerSentEvent[] {
    const events: ServerSentEvent[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone CR at the end may be the first half of a CRLF still in flight.
      if (match[0] === '\r' && match.index === this.buffer.length - 1 && !atEnd) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const event = this.processLine(line);
      if (event) events.push(event);
    }
    return events;
  }

  private processLine(line: string): ServerSentEvent | null {
    if (line === '') {
      const event = this.dataLines.length > 0 ? { event: this.eventType || 'message', data: this.dataLines.join('\n') } : null;
      this.eventType = '';
      this.dataLines = [];
      return event;
    }
    if (line.startsWith(':')) return null; // comment / keep-alive
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.eventType = value;
    else if (field === 'data') this.dataLines.push(value);
    // "id" and "retry" only matter for EventSource reconnection, which a POST cannot use.
    return null;
  }
}

/**
 * POSTs a JSON body and yields the Server-Sent Events of the response as they arrive.
 * Errors before the stream starts are the API's JSON errors, thrown as ApiError.
 * Aborting `signal` (or leaving the loop early) closes the connection, which tells the server to stop.
 */
export async function* postEventStream(path: string, body: unknown, signal?: AbortSignal): AsyncGenerator<ServerSentEvent> {
  const response = await send(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
    body: JSON.stringify(body),
    signal,
  });
  if (!response.ok) throw await errorFromResponse(response);
  if (!response.body) throw new ApiError('The server sent an empty stream.', { status: response.status, type: 'stream' });

  const reader = response.body.getReader();
  const parser = new SseParser();
  try {
    for (;;) {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } catch (error) {
        if (isAbortError(error) || signal?.aborted) throw error;
        throw new ApiError('The connection to the server broke while the suggestion was streaming.', { type: 'network' });
      }
      if (result.done) break;
      yield* parser.push(result.value);
    }
    yield* parser.end();
  } finally {
    // Runs on normal end, on error and when the consumer stops early: close the connection.
    reader.cancel().catch(() => undefined);
  }
}
