"""The allocator behind telediag's Arrow tables.

pyarrow's default pool on Linux is mimalloc. On the benchmark machine, reading a
10M-record month (about 2 GB of columns) took 4.3-4.7 s through it against 1.7-1.9 s
through jemalloc or the system allocator: the time went into faulting in fresh memory,
which mimalloc asks of the system in many small pieces. Peak memory was no higher. So
telediag makes jemalloc (else the system allocator) Arrow's default pool when it is
imported, unless the user chose one with ``ARROW_DEFAULT_MEMORY_POOL``. Arrays already
made keep the pool that made them, so switching is safe at any time. Arrow's C++ code
takes its own buffers from the pool chosen when pyarrow is loaded: when telediag is
imported first, that is jemalloc too (:func:`_arrow_inside_on_jemalloc`).

jemalloc keeps freed pages for reuse for a while (Arrow sets a second) before it gives
them back. A scan frees the month as read just before the sort and the rules allocate
through numpy, which cannot reuse them, so for that second they counted twice. telediag
sets the delay to :data:`DECAY_MS` when it is imported (Arrow's setting is the default
of arenas made after it, so it is made early): over three runs each at 10M rows the
peak went from 2.61 GB to 2.49 GB for about 2% more time; no delay at all gave 2.40 GB
for 8% more time.

numpy asks the kernel for huge pages for its large arrays. That pays off where arrays
are read many times (the rules), but a fresh huge page may first have to be made by
compacting memory, and right after the month as read is freed that stalls: the sort's
arrays, written once, took 0.6-0.95 s at 10M rows with the advice and 0.45-0.49 s
without it. :func:`small_pages` turns the advice off around such a step.

A month spilled into buckets is the opposite case: every batch frees what the next one
allocates, about half a second later. With the short delay those pages were given back
in between and faulted in again: at 100M rows the spill pass spent 76 s in the kernel.
Within :func:`streaming_decay`, arenas keep freed pages for :data:`STREAM_DECAY_MS`
(42.7 s in the kernel, 137 s instead of 162 s for the pass).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

#: The environment variable by which pyarrow lets a user choose the pool.
POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def _named_pool() -> bool:
    """Whether the process environment names a pool (a value that is not empty): in
    ``os.environ``, or set under it (``os.putenv``, C code), where only the C library
    sees it."""
    if os.environ.get(POOL_VARIABLE):
        return True
    with contextlib.suppress(OSError, AttributeError, TypeError):
        import ctypes

        getenv = ctypes.CDLL(None).getenv
        getenv.restype = ctypes.c_char_p
        return bool(getenv(POOL_VARIABLE.encode()))
    return False


def bundles_jemalloc(package: Path | None) -> bool:
    """Whether the pyarrow at ``package`` (its directory) is a wheel from PyPI for Linux
    or macOS: such wheels carry their own ``libarrow``, built with jemalloc. A pyarrow
    linked to a system or conda ``libarrow`` may lack it, and naming jemalloc there
    would only print Arrow's warning."""
    if package is None or not sys.platform.startswith(("linux", "darwin")):
        return False
    try:
        names = os.listdir(package)
    except OSError:
        return False
    return any(n.startswith("libarrow.") and (".so" in n or ".dylib" in n) for n in names)


def _pyarrow_directory() -> Path | None:
    with contextlib.suppress(ImportError, ValueError):
        spec = importlib.util.find_spec("pyarrow")
        if spec is not None and spec.submodule_search_locations:
            return Path(next(iter(spec.submodule_search_locations)))
    return None


def _arrow_inside_on_jemalloc() -> None:
    """Make jemalloc the pool of Arrow's own C++ code, if pyarrow is not imported yet,
    the user named no pool and pyarrow is a wheel that has it (:func:`bundles_jemalloc`).

    Arrow's C++ code allocates some buffers for itself (Parquet and CSV reading, IPC)
    from the pool that :data:`POOL_VARIABLE` names when pyarrow is loaded, whatever
    pyarrow's Python default is set to later. Left at mimalloc, that pool held 44 MB
    of a 1M-record scan's 455 MB peak (it keeps freed pages, in huge pages): with
    jemalloc the peak was 419-421 MB in the same time, and 2.37 GB instead of 2.44 GB
    at 10M. The variable is set only while pyarrow loads (a child process started by
    another thread in that moment inherits it), then removed, so the environment is
    left as it was. Where pyarrow was loaded first (``import pandas`` loads it),
    Arrow's own code keeps its pool."""
    if "pyarrow" in sys.modules or _named_pool():
        return
    if not bundles_jemalloc(_pyarrow_directory()):
        return
    os.environ[POOL_VARIABLE] = "jemalloc"
    try:
        importlib.import_module("pyarrow")
    finally:
        del os.environ[POOL_VARIABLE]


_arrow_inside_on_jemalloc()

import pyarrow as pa  # noqa: E402  (after the pool of Arrow's own code is chosen)

#: How long jemalloc keeps freed pages before giving them back, in milliseconds.
DECAY_MS = 100
#: The same, for the arenas made while a month is streamed in batches.
STREAM_DECAY_MS = 2000


def choose_memory_pool() -> str:
    """Make jemalloc (else the system allocator) Arrow's default pool, unless the user
    chose one; the backend now in use."""
    if _named_pool():
        return str(pa.default_memory_pool().backend_name)
    for make in (pa.jemalloc_memory_pool, pa.system_memory_pool):
        try:
            pool = make()
        except NotImplementedError:  # a pyarrow built without it
            continue
        pa.set_memory_pool(pool)
        if pool.backend_name == "jemalloc":
            pa.jemalloc_set_decay_ms(DECAY_MS)
            _decay_state["ours"] = True
        return str(pool.backend_name)
    return str(pa.default_memory_pool().backend_name)


class _Shared:
    """A setting of the whole process that overlapping blocks hold together (buckets in
    parallel threads): the first block to enter calls ``enter``, the last to leave calls
    ``leave``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0

    @contextlib.contextmanager
    def held(self, enter: Callable[[], None], leave: Callable[[], None]) -> Iterator[None]:
        with self._lock:
            if self._active == 0:
                enter()
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                if self._active == 0:
                    leave()


#: Whether telediag set jemalloc's delay (a pool the user chose keeps its own).
_decay_state: dict[str, Any] = {"ours": False}
_decay = _Shared()


def _stream_decay() -> None:
    pa.jemalloc_set_decay_ms(STREAM_DECAY_MS)


def _short_decay() -> None:
    pa.jemalloc_set_decay_ms(DECAY_MS)
    pa.default_memory_pool().release_unused()


@contextlib.contextmanager
def streaming_decay() -> Iterator[None]:
    """Arenas jemalloc makes within the block (one for each thread that first allocates
    there, up to its limit of four per core) keep freed pages for
    :data:`STREAM_DECAY_MS`; after it, new arenas get :data:`DECAY_MS` again.

    jemalloc fixes an arena's delay when it makes the arena, and there is no setting
    for arenas already made, so the longer delay outlives the block: arenas made in it
    go on serving Arrow's own worker threads, and threads started later once the
    block's threads have ended. After an out-of-core scan, a process may therefore keep
    freed memory for up to 2 s where it kept it for 0.1 s (a process that had made all
    its arenas before keeps the short delay throughout). When the last block ends, the
    pages freed until then are given back at once.

    Blocks may overlap (a store prepared while a scan runs): the first sets the delay,
    the last puts back :data:`DECAY_MS`. Where telediag did not choose the pool (another
    allocator, or ``ARROW_DEFAULT_MEMORY_POOL`` set), nothing: to set jemalloc's delays
    yourself, choose the pool with ``ARROW_DEFAULT_MEMORY_POOL=jemalloc`` and telediag
    leaves them alone."""
    if not _decay_state["ours"]:
        yield
        return
    with _decay.held(_stream_decay, _short_decay):
        yield


_advice = _Shared()
#: The huge-page advice the first of the :func:`small_pages` blocks running now found.
_advice_before: dict[str, bool] = {}


def _advise() -> Callable[[bool], bool] | None:
    """numpy's switch of the huge-page advice (it returns the setting it replaced)."""
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):  # numpy 2, numpy 1
        with contextlib.suppress(ImportError):
            found = getattr(importlib.import_module(module), "_set_madvise_hugepage", None)
            return found if callable(found) else None
    return None


@contextlib.contextmanager
def small_pages() -> Iterator[None]:
    """Within the block, numpy does not ask for huge pages for new arrays (a setting of
    the whole process). Blocks may run in several threads at once (buckets sorted in
    parallel): the first to enter turns the advice off and the last to leave puts
    back what the first found. Where numpy has no such switch, nothing."""
    advise = _advise()
    if advise is None:
        yield
        return

    def off() -> None:
        _advice_before["advice"] = bool(advise(False))

    def back() -> None:
        advise(_advice_before["advice"])

    with _advice.held(off, back):
        yield
