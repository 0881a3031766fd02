"""Work that writes files from a thread pool, and stops cleanly when the caller gives up.

On an error or Ctrl-C, the caller removes what the work wrote. A task already writing
must finish first, or its file lands after the clean-up; tasks not yet at their next
step must not start writing. :class:`Flight` counts the tasks in flight itself (a join
of a thread cut short by a second Ctrl-C may report the thread done while it still
runs) and raises :class:`Stopped` in the others at their next step.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor


class Stopped(Exception):
    """A task not done because the caller gave up."""


class Flight:
    """The tasks writing files, and the flag that stops the rest."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._busy = 0
        self._idle = threading.Condition()

    @contextlib.contextmanager
    def task(self) -> Iterator[None]:
        """Around a task: counts it in flight, and stops it at once if the caller gave up."""
        with self._idle:
            self._busy += 1
        try:
            self.go_on()
            yield
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def go_on(self) -> None:
        """Raise :class:`Stopped` once the caller has given up."""
        if self.stop.is_set():
            raise Stopped

    @contextlib.contextmanager
    def pool(self, workers: int) -> Iterator[ThreadPoolExecutor]:
        """A pool of ``workers`` threads for the tasks. If the block ends in an error or
        Ctrl-C, the caller has given up: tasks not started are dropped and the running
        ones stop at their next step. Either way the block ends only once no task is in
        flight (:meth:`land`)."""
        pool = ThreadPoolExecutor(max_workers=max(1, workers))
        try:
            yield pool
        except BaseException:
            self.stop.set()
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            self.land()

    def land(self) -> None:
        """Wait until no task is in flight, through any further Ctrl-C (tasks not yet
        done stop at their next step)."""
        while True:
            try:
                with self._idle:
                    while self._busy:
                        self._idle.wait(0.1)
                return
            except KeyboardInterrupt:
                continue


def through_ctrl_c(clean_up: Callable[[], None]) -> None:
    """Run ``clean_up`` (which must be safe to run again: removing files that may be gone)
    to its end, starting it over after any Ctrl-C, then raise the Ctrl-C: a second
    Ctrl-C while files are removed must not leave the rest."""
    interrupted = False
    while True:
        try:
            clean_up()
            break
        except KeyboardInterrupt:
            interrupted = True
    if interrupted:
        raise KeyboardInterrupt
