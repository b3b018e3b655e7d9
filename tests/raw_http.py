"""HTTP/1.1 spoken byte by byte over a raw socket, for tests of what a real client library would
refuse to send (half requests, contradictory framing, oversized heads) and of what came back."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def parse_reply(raw: bytes) -> Reply:
    """The first non-1xx response in `raw` (a server may send 100 Continue first)."""
    while True:
        head, _, rest = raw.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        if status >= 200:
            length = int(headers.get("content-length", len(rest)))
            return Reply(status, headers, rest[:length])
        raw = rest


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes (or resets) the connection; `timeout` bounds
    each wait, so a server that stays silent fails the caller's assertions instead of hanging."""
    sock.settimeout(timeout)
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def exchange(port: int, raw: bytes, timeout: float = 10.0) -> Reply:
    """Send `raw` on a new connection (from a thread, so that a server that answers before
    reading everything is heard) and parse the reply it ends with."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:

        def send() -> None:
            try:
                sock.sendall(raw)
            except OSError:  # the server answered early and closed: what it said is still read
                pass

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        received = read_until_closed(sock, timeout)
        sender.join(timeout)
    assert received, "the server closed the connection without a response"
    return parse_reply(received)


def chunked(body: bytes, size: int = 65536) -> bytes:
    """`body` in chunked transfer coding, `size` bytes per chunk, with the last-chunk marker."""
    pieces = [b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)]
    return b"".join(pieces) + b"0\r\n\r\n"
