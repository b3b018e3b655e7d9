"""The gunicorn worker class: gthread, except that a thread is spent only on a whole request.

gunicorn's gthread worker hands a connection to a thread as soon as its first bytes arrive, and
the thread then blocks until the request is complete: a handful of clients that send half a
request and wait take every thread, /health included (issue 14). This worker keeps what gthread
does well (threads for the application, so a generation does not stop /health) and moves the
reading into its event loop, as nginx does in front of an upstream:

- every request, head and body, is read without blocking by the event loop until
  backend/http_framing.py says it is complete, then handed to a thread with its bytes already
  buffered; a request not complete within AUTOCOMPLETE_READ_TIMEOUT seconds gets 408 and is
  dropped; a head over MAX_HEAD_BYTES gets 431. A slow client costs a socket and its buffer;
- errors gunicorn raises before Flask sees a request (a malformed request line or header, a
  header or URL over gunicorn's limits) are answered in the API's JSON error shape, not HTML
  (backend/worker_errors.py writes those responses);
- on SIGTERM the listening socket is closed at once (after taking in what the kernel had already
  queued), so new connections are refused while requests in flight finish, instead of waiting
  in a backlog nobody reads;
- connections are closed without blocking the event loop (gthread lingers up to 2 s in it);
- responses say `Server: abstract-autocomplete`, not which server software runs.
"""

from __future__ import annotations

import errno
import selectors
import socket
import struct
import time
from functools import partial

from flask import Flask
from gunicorn.http import wsgi
from gunicorn.workers.gthread import TConn, ThreadWorker

from backend.config import DEFAULT_MAX_BODY_BYTES, PREFIX, env_int
from backend.http_framing import RequestFraming, Verdict
from backend.worker_errors import SERVER_NAME, error_bytes, parse_error_response, request_path

DEFAULT_READ_TIMEOUT = 10  # seconds for a request's head, and again for its body
MAX_HEAD_BYTES = 64 * 1024  # request line and headers; nginx's default allows 32 KiB
LINGER_SECONDS = 2.0  # after the last response, how long unread input is drained before closing
LINGER_MAX_BYTES = 4 * 1024 * 1024
ACCEPT_AT_STOP_MAX = 1024  # connections already queued in the backlog, taken in on SIGTERM


def recv_nowait(sock: socket.socket) -> bytes | None:
    """Up to 64 KiB from a non-blocking socket: None when nothing is ready yet, b"" when the
    peer closed or reset the connection."""
    try:
        return sock.recv(65536)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""


class Connection(TConn):
    """gthread's connection plus what the event loop needs while it reads or closes one."""

    def __init__(self, *args):
        super().__init__(*args)
        self.framing: RequestFraming | None = None
        self.deadline = 0.0
        self.request: bytes | None = None  # a whole request, read and waiting for a thread
        self.close_after = False  # answer this request, then close (its body was not read whole)
        self.received_any = False
        self.continue_sent = False
        self.drained = 0


class BufferedThreadWorker(ThreadWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read_timeout = env_int(PREFIX + "READ_TIMEOUT", DEFAULT_READ_TIMEOUT, 1)
        self.max_body = env_int(PREFIX + "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1)
        self.reading: set[Connection] = set()
        self.lingering: set[Connection] = set()

    def init_process(self):
        wsgi.SERVER = SERVER_NAME  # the Server header gunicorn writes on every response
        super().init_process()

    def flask_app(self) -> Flask | None:
        """The application this worker serves (None if it failed to load): it knows which API
        family owns a path, and so the shape of an error answered before Flask sees the request."""
        app = getattr(self, "wsgi", None)
        return app if isinstance(app, Flask) else None

    # --- accepting, and the way into the thread pool ---

    def accept(self, listener):
        try:
            client, address = listener.accept()
        except OSError as error:
            if error.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return False
            raise
        self.nr_conns += 1
        # A backstop: a thread that ever does read from the socket (a handed-over body the
        # application reads past what arrived) waits at most the read timeout.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", self.read_timeout, 0))
        self.enqueue_req(Connection(self.cfg, client, address, listener.getsockname()))
        return True

    def enqueue_req(self, conn):
        """Every way into the thread pool (new, kept-alive, pipelined) comes through here: a
        connection without a whole buffered request is read by the event loop first."""
        if conn.request is not None:
            conn.data_ready = True  # gthread's own wait for the first byte is not needed
            super().enqueue_req(conn)
            return
        conn.framing = RequestFraming(MAX_HEAD_BYTES, self.max_body)
        conn.deadline = time.monotonic() + self.read_timeout
        conn.received_any = conn.continue_sent = False
        conn.sock.setblocking(False)
        self.reading.add(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_request_bytes, conn))
        leftover = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        if leftover:  # pipelined bytes gthread's parser read past the previous request
            self.take_bytes(conn, leftover)

    def on_request_bytes(self, conn, _sock):
        data = recv_nowait(conn.sock)
        if data is None:
            return
        if not data:  # the client closed or reset before sending a whole request
            self.stop_reading(conn)
            self.close_now(conn)
            return
        self.take_bytes(conn, data)

    def take_bytes(self, conn, data: bytes) -> None:
        conn.received_any = True
        verdict = conn.framing.feed(data)
        if verdict is Verdict.NEED_MORE:
            if conn.framing.expects_continue and conn.framing.head_end is not None and not conn.continue_sent:
                conn.continue_sent = True  # curl waits a second for this before sending a body
                self.send_quietly(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
            if conn.framing.head_end is not None:
                conn.deadline = max(conn.deadline, time.monotonic() + self.read_timeout)
            return
        buffered = bytes(conn.framing.buffer)
        self.stop_reading(conn)
        if verdict is Verdict.HEAD_TOO_LARGE:
            self.refuse(conn, 431, f"the request head is larger than {MAX_HEAD_BYTES} bytes", buffered)
            return
        conn.request = buffered
        conn.close_after = verdict is not Verdict.COMPLETE
        self.enqueue_req(conn)

    def stop_reading(self, conn) -> None:
        self.reading.discard(conn)
        conn.framing = None
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass

    # --- in a thread: the buffered request goes to gunicorn's parser, then the application ---

    def handle(self, conn):
        if conn.request is not None:
            data, conn.request = conn.request, None
            conn.init()  # creates the HTTP/1 parser of a new connection (no-op when kept alive)
            conn.parser.unreader.unread(data)
        return super().handle(conn)

    def handle_request(self, req, conn):
        if conn.close_after:
            req.must_close = True  # "Connection: close": the rest of its body is never read
        return super().handle_request(req, conn)

    def handle_error(self, req, client, addr, exc):
        path = getattr(req, "path", None) or getattr(getattr(exc, "req", None), "path", None) or ""
        status, response = parse_error_response(exc, path, self.flask_app())
        if status == 500:
            self.log.exception("Error handling request %s", path)
        else:
            self.log.warning("Invalid request from ip=%s: %s %s", (addr or ("",))[0], status, type(exc).__name__)
        try:
            client.sendall(response)
        except OSError:
            self.log.debug("Failed to send error message.")

    # --- closing without blocking the event loop ---

    def finish_request(self, conn, fs):
        keep_alive = not fs.cancelled() and fs.exception() is None and fs.result()
        if keep_alive:
            super().finish_request(conn, fs)
        else:
            self.linger(conn)

    def refuse(self, conn, status: int, message: str, head: bytes) -> None:
        self.send_quietly(conn, error_bytes(status, message, request_path(head), self.flask_app()))
        self.linger(conn)

    def send_quietly(self, conn, data: bytes) -> None:
        try:
            conn.sock.setblocking(False)
            conn.sock.send(data)  # small, into an empty send buffer: all of it goes
        except OSError:
            pass

    def linger(self, conn) -> None:
        """Half-close, then read and drop what the client still sends for LINGER_SECONDS, so that
        unread input does not make the kernel reset the connection under the last response."""
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close_now(conn)
            return
        conn.deadline = time.monotonic() + LINGER_SECONDS
        conn.drained = 0
        self.lingering.add(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_linger_bytes, conn))

    def on_linger_bytes(self, conn, _sock):
        data = recv_nowait(conn.sock)
        if data is None:
            return
        conn.drained += len(data)
        if not data or conn.drained > LINGER_MAX_BYTES:
            self.close_now(conn)

    def close_now(self, conn) -> None:
        if conn in self.lingering:
            self.lingering.discard(conn)
            try:
                self.poller.unregister(conn.sock)
            except (KeyError, ValueError, OSError):
                pass
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self):
        """Also, once a second: drop requests past their read deadline and end lingering closes."""
        super().murder_pending()
        now = time.monotonic()
        for conn in [c for c in self.reading if c.deadline <= now]:
            head = bytes(conn.framing.buffer)
            self.stop_reading(conn)
            if conn.received_any:
                self.refuse(conn, 408, f"the request was not received within {self.read_timeout} s", head)
            else:  # an idle connection that never sent a byte is closed without a word, as nginx does
                self.close_now(conn)
        for conn in [c for c in self.lingering if c.deadline <= now]:
            self.close_now(conn)

    # --- graceful shutdown ---

    def set_accept_enabled(self, enabled):
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:
            self.stop_listening()

    def stop_listening(self) -> None:
        """SIGTERM: take in what the kernel already queued (it is served like any request in
        flight), then close the listening socket so that new connections are refused at once."""
        for listener in self.sockets:
            for _ in range(ACCEPT_AT_STOP_MAX):
                try:
                    if not self.accept(listener):
                        break
                except OSError:
                    break
            listener.close()
