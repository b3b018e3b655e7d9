"""A gate on an onnxruntime session, so that tests decide when each model run happens.

Continuous batching makes who decodes with whom depend on when requests arrive; tests that must
know (a request joining at a given step, a row cancelled between two steps) hold every run back
until they release it, instead of sleeping and hoping.
"""

from __future__ import annotations

import threading

WAIT = 60.0  # bound on every wait; none should come near it


class GatedSession:
    """Wraps the onnxruntime session: every run waits for a permit from the test, and the batch
    size of each run is recorded."""

    def __init__(self, session):
        self._session = session
        self._permits = threading.Semaphore(0)
        self._finished = threading.Semaphore(0)
        self.batch_sizes: list[int] = []

    def _gated(self, run, batch_size: int):
        assert self._permits.acquire(timeout=WAIT), "the test never released this run"
        try:
            return run()
        finally:
            self.batch_sizes.append(batch_size)
            self._finished.release()

    def run(self, names, feed):
        return self._gated(lambda: self._session.run(names, feed), feed["input_ids"].shape[0])

    def io_binding(self):
        return _RecordingBinding(self._session.io_binding())

    def run_with_iobinding(self, binding):
        return self._gated(lambda: self._session.run_with_iobinding(binding.binding), binding.batch_size)

    def step(self, runs: int = 1) -> None:
        """Let `runs` more model runs happen and wait until they have."""
        for _ in range(runs):
            self._permits.release()
            assert self._finished.acquire(timeout=WAIT), "the scheduler did not run"

    def open(self) -> None:
        self._permits.release(10_000)

    def __getattr__(self, name):
        return getattr(self._session, name)


class _RecordingBinding:
    """An onnxruntime IOBinding that remembers the batch size of the input_ids bound to it."""

    def __init__(self, binding):
        self.binding = binding
        self.batch_size = 0

    def bind_cpu_input(self, name, array):
        if name == "input_ids":
            self.batch_size = array.shape[0]
        self.binding.bind_cpu_input(name, array)

    def __getattr__(self, name):
        return getattr(self.binding, name)
