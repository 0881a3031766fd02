"""Few allocator arenas, asked for before pyarrow is loaded.

Each arena of an allocator keeps its own freed pages, and both allocators under a scan
make many: Arrow's jemalloc four per core, glibc's malloc (numpy's arrays, pandas) eight
per core. A page that one thread's arena holds is of no use to a thread that another
arena serves, so the pages one step frees wait out their delay (see
:mod:`telediag.allocator`) while the next step's threads fault in fresh ones. telediag
asks jemalloc for one arena per core, at least two and at most four
(:func:`arena_count`), and glibc for one arena: numpy's arrays are few and large, so
threads sharing it rarely wait, and each reuses what another freed.

Measured on the benchmark machine (2 cores), peak memory of an in-memory scan, in the
same time:

- 1M records: 446-470 MB before; 436-446 MB with two jemalloc arenas; 426-429 MB with
  one glibc arena as well (four runs; DuckDB 434-437 MB in the same runs), against
  429-436 MB with two glibc arenas;
- 10M records: 2.44-2.51 GB before, 2.39-2.43 GB after.

jemalloc reads its options when pyarrow is loaded, so telediag sets them when it is
imported, before it imports pyarrow itself. In a process that had loaded pyarrow before
(``import pandas`` may), this is too late and is skipped: set
``JE_ARROW_MALLOC_CONF=narenas:2`` before starting Python to get it there. glibc caps the
arenas it makes from the call on (threads already running keep theirs). Nothing is
changed where the user set the variable of the allocator concerned
(``JE_ARROW_MALLOC_CONF``, ``MALLOC_ARENA_MAX``) or chose Arrow's pool
(``ARROW_DEFAULT_MEMORY_POOL``).

:mod:`telediag` imports this module first, and it asks on import. It imports nothing
that loads pyarrow.
"""

from __future__ import annotations

import ctypes
import os
import sys

#: The environment variable of Arrow's jemalloc for its options.
JEMALLOC_CONF_VARIABLE = "JE_ARROW_MALLOC_CONF"
#: glibc's environment variable for the most arenas its malloc makes.
GLIBC_ARENAS_VARIABLE = "MALLOC_ARENA_MAX"
#: The environment variable by which pyarrow lets a user choose its pool.
POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"
#: ``mallopt``'s parameter for that cap (``M_ARENA_MAX`` in glibc's malloc.h).
_M_ARENA_MAX = -8
#: Arenas asked of glibc's malloc.
GLIBC_ARENAS = 1


def arena_count() -> int:
    """Arenas asked of Arrow's jemalloc: one per core, at least two, at most four."""
    return max(2, min(4, os.cpu_count() or 1))


def few_jemalloc_arenas() -> bool:
    """Ask Arrow's jemalloc for :func:`arena_count` arenas, unless pyarrow is loaded
    already or the user set its options or chose Arrow's pool; whether it was asked."""
    if "pyarrow" in sys.modules or os.environ.get(POOL_VARIABLE):
        return False
    if JEMALLOC_CONF_VARIABLE in os.environ:
        return False
    os.environ[JEMALLOC_CONF_VARIABLE] = f"narenas:{arena_count()}"
    return True


def few_glibc_arenas() -> bool:
    """Ask glibc's malloc to make at most :data:`GLIBC_ARENAS` arenas from now on,
    unless the user set :data:`GLIBC_ARENAS_VARIABLE` or chose Arrow's pool; whether it
    was asked (never on another C library)."""
    if os.environ.get(GLIBC_ARENAS_VARIABLE) or os.environ.get(POOL_VARIABLE):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (musl has no such arenas)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, GLIBC_ARENAS))


few_jemalloc_arenas()
few_glibc_arenas()
