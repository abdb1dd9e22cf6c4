"""File writes off the event loop: one writer thread runs them in order.

The loop only queues a write (a bound method and its arguments); the thread does the blocking
`write`/`flush`. The first failure is reported once through `on_error` (called on the writer
thread: pass something thread-safe) and later writes are dropped, so a full disk ends the call
with a sentence instead of stalling or crashing the audio path.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

_STOP = object()


class WriterThread:
    def __init__(
        self,
        on_error: Callable[[BaseException], None] | None = None,
        name: str = "rtc-voice-writer",
    ) -> None:
        self.on_error = on_error
        self.error: BaseException | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._closed = False

    def submit(self, fn: Callable[..., object], *args: Any, cleanup: bool = False) -> None:
        """Run `fn(*args)` on the writer thread, after everything submitted before. A `cleanup`
        job (closing a file) runs even after a failure, and its own errors are ignored."""
        if not self._closed and (cleanup or self.error is None):
            self._queue.put((fn, args, cleanup))

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            fn, args, cleanup = job
            if self.error is not None and not cleanup:
                continue
            try:
                fn(*args)
            except Exception as exc:
                if cleanup or self.error is not None:
                    continue
                self.error = exc
                if self.on_error is not None:
                    with contextlib.suppress(Exception):  # e.g. the loop is already gone
                        self.on_error(exc)

    def close(self, timeout: float = 10.0) -> None:
        """Finish every queued write, then stop the thread (blocking; call it off the loop)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
