"""Generation slots and a bounded wait queue, per worker process.

A worker's engine decodes the requests it runs in one batch (backend/engine/batch.py), so the
slots are that batch's capacity; an engine that cannot batch gets one slot, since unbatched
generations at once only make each one slower. A worker runs at most `slots` generations; up
to `queue_size` more requests wait (first come, first served) for a free slot; any request
beyond that, or one that waited longer than `queue_timeout`, is refused at once with 429 and a
Retry-After estimated from how long recent generations took. A queued request whose client
hangs up leaves the queue.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from backend.api.errors import ApiError

CLIENT_CHECK_SECONDS = 0.25  # how often a queued request looks whether its client is still there


class Slot:
    """A held generation slot; release() is idempotent so every exit path may call it."""

    def __init__(self, admission: Admission):
        self._admission = admission
        self._started = time.monotonic()
        self._released = False
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._admission._release(time.monotonic() - self._started)


class Admission:
    def __init__(
        self,
        slots: int,
        queue_size: int,
        queue_timeout: float,
        on_change: Callable[[int, int], None] = lambda active, waiting: None,
    ):
        self.slots = slots
        self.queue_size = queue_size
        self.queue_timeout = queue_timeout
        self.active = 0
        self._queue: deque[object] = deque()  # one ticket per waiting request, in arrival order
        self._on_change = on_change  # told (active, waiting) after every change, for the gauges
        self._condition = threading.Condition()
        self._recent_seconds: deque[float] = deque(maxlen=20)

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def acquire(self, client_gone: Callable[[], bool] = lambda: False) -> Slot:
        """A slot, after waiting in the queue if needed; ApiError 429 if there is no room. A
        queued request checks `client_gone` every CLIENT_CHECK_SECONDS and gives its place up
        (ApiError 499) once its client has left, instead of holding it until a slot frees."""
        with self._condition:
            if self.active < self.slots and not self._queue:
                return self._admit()
            if self.waiting >= self.queue_size:
                raise self._overloaded("queue_full", "every generation slot is busy and the queue is full")
            ticket = object()
            self._queue.append(ticket)
            self._on_change(self.active, self.waiting)
            deadline = time.monotonic() + self.queue_timeout
            try:
                while not (self.active < self.slots and self._queue[0] is ticket):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise self._overloaded(
                            "queue_timeout", f"no generation slot became free within {self.queue_timeout:g} s"
                        )
                    if client_gone():
                        raise ApiError(
                            499, "the client closed the connection while it waited for a slot", reason="client_closed"
                        )
                    self._condition.wait(min(remaining, CLIENT_CHECK_SECONDS))
            finally:
                self._queue.remove(ticket)
                self._on_change(self.active, self.waiting)
                self._condition.notify_all()  # the next in line may now be first
            return self._admit()

    def retry_after_seconds(self) -> int:
        """Seconds until a slot is likely free: queued work ahead, at the recent pace."""
        if not self._recent_seconds:
            return 1
        mean = sum(self._recent_seconds) / len(self._recent_seconds)
        return max(1, min(60, math.ceil(mean * (self.waiting + 1) / self.slots)))

    def _admit(self) -> Slot:
        self.active += 1
        self._on_change(self.active, self.waiting)
        return Slot(self)

    def _release(self, seconds: float) -> None:
        with self._condition:
            self.active -= 1
            self._recent_seconds.append(seconds)
            self._on_change(self.active, self.waiting)
            self._condition.notify_all()  # only the first in line takes the slot

    def _overloaded(self, reason: str, message: str) -> ApiError:
        retry = self.retry_after_seconds()
        return ApiError(429, f"{message}; retry in {retry} s", headers={"Retry-After": str(retry)}, reason=reason)
