"""telediag picks Arrow's memory pool unless the user did (telediag.allocator)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOW = "import telediag, pyarrow as pa; print(pa.default_memory_pool().backend_name)"


def _pool(**env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    environ.update(env)
    done = subprocess.run(
        [sys.executable, "-c", SHOW], cwd=ROOT, env=environ, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_telediag_chooses_jemalloc_or_the_system_allocator() -> None:
    import pyarrow as pa

    try:
        pa.jemalloc_memory_pool()
        expected = "jemalloc"
    except NotImplementedError:
        expected = "system"
    assert _pool() == expected


ARROW_INSIDE = """
import telediag
import glob, os, pyarrow as pa
telediag.scan(sorted(glob.glob("fixtures/cdr/TD002/*.csv"))[0])
print(pa.mimalloc_memory_pool().max_memory(), pa.jemalloc_memory_pool().max_memory(),
      "ARROW_DEFAULT_MEMORY_POOL" in os.environ)
"""


def test_arrow_itself_allocates_through_jemalloc_when_telediag_is_imported_first() -> None:
    """Buffers that Arrow's C++ code allocates for itself (Parquet and CSV reading, IPC)
    go to the pool chosen from the environment when pyarrow is first imported. Left at
    mimalloc, that pool held 44 MB of a 1M-record scan's peak; the user's environment is
    left as it was."""
    import pyarrow as pa

    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        return  # a pyarrow without jemalloc keeps its own default
    environ = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    done = subprocess.run(
        [sys.executable, "-c", ARROW_INSIDE], cwd=ROOT, env=environ, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    by_mimalloc, by_jemalloc, variable_left = done.stdout.split()
    assert int(by_mimalloc) == 0
    assert int(by_jemalloc) > 0
    assert variable_left == "False"
    assert done.stderr == ""


PUTENV = """
import os, subprocess
os.putenv("ARROW_DEFAULT_MEMORY_POOL", "system")
import telediag, pyarrow as pa
child = subprocess.run(["sh", "-c", "echo ${ARROW_DEFAULT_MEMORY_POOL-unset}"],
                       capture_output=True, text=True).stdout.strip()
print(pa.default_memory_pool().backend_name, child)
"""


def test_a_pool_named_under_os_environ_is_kept_and_left_in_place() -> None:
    """``os.putenv`` sets the variable where only the C library sees it: still the
    user's choice, for Arrow and for child processes."""
    environ = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    done = subprocess.run(
        [sys.executable, "-c", PUTENV], cwd=ROOT, env=environ, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["system", "system"]


def test_only_a_pyarrow_carrying_its_own_libarrow_is_taken_to_have_jemalloc(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A wheel bundles libarrow (built with jemalloc on Linux and macOS); a pyarrow
    linked to a system or conda libarrow may not have it, and is left alone."""
    from telediag.allocator import bundles_jemalloc

    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "libarrow_python.so").touch()  # what a conda pyarrow carries
    wheel = tmp_path / "wheel"
    wheel.mkdir()
    (wheel / "libarrow_python.so").touch()
    (wheel / ("libarrow.2600.dylib" if sys.platform == "darwin" else "libarrow.so.2600")).touch()
    assert not bundles_jemalloc(linked)
    assert not bundles_jemalloc(tmp_path / "missing")
    assert not bundles_jemalloc(None)
    assert bundles_jemalloc(wheel) == sys.platform.startswith(("linux", "darwin"))


def test_a_pool_the_user_chose_is_kept() -> None:
    assert _pool(ARROW_DEFAULT_MEMORY_POOL="mimalloc") == "mimalloc"
    assert _pool(ARROW_DEFAULT_MEMORY_POOL="system") == "system"


def test_jemalloc_gives_freed_pages_back_sooner(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With jemalloc chosen, freed pages go back after DECAY_MS, not Arrow's second."""
    import pyarrow as pa

    from telediag import allocator

    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        return  # a pyarrow without jemalloc: nothing to set
    set_to: list[int] = []
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    monkeypatch.setattr(pa, "jemalloc_set_decay_ms", set_to.append)
    assert allocator.choose_memory_pool() == "jemalloc"
    assert set_to == [allocator.DECAY_MS]


def test_small_pages_turns_the_huge_page_advice_off_and_back() -> None:
    from numpy._core.multiarray import _set_madvise_hugepage as advise

    from telediag.allocator import small_pages

    for before in (True, False):
        advise(before)
        with small_pages():
            assert advise(False) is False  # off inside the block
        assert advise(before) is before  # and as it was after it
    advise(True)
    try:
        with small_pages():
            raise KeyError("boom")
    except KeyError:
        pass
    assert advise(True) is True  # put back even when the block raised


def test_small_pages_blocks_in_threads_leave_the_advice_as_it_was() -> None:
    """Review: buckets sorted in threads each saved the advice and put it back as they
    left, so the first to leave turned it on under the other, and the last left it off
    for the rest of the process."""
    import threading

    from numpy._core.multiarray import _set_madvise_hugepage as advise

    from telediag.allocator import small_pages

    advise(True)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with small_pages():
            a_in.set()
            b_in.wait()
        a_out.set()

    def second() -> None:
        a_in.wait()
        with small_pages():
            b_in.set()
            a_out.wait()
            seen.append(advise(False))  # still off while this block runs

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [False]
    assert advise(True) is True  # on again once every block has left


def test_streaming_decay_lengthens_the_delay_for_new_arenas_and_puts_it_back(
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    """Overlapping blocks (a store prepared while a scan spills): the first sets the long
    delay, the last to leave puts back the short one, even when a block raised."""
    import threading

    import pyarrow as pa

    from telediag import allocator

    set_to: list[int] = []
    monkeypatch.setattr(pa, "jemalloc_set_decay_ms", set_to.append)
    monkeypatch.setitem(allocator._decay_state, "ours", True)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with allocator.streaming_decay():
            a_in.set()
            b_in.wait()
        a_out.set()

    def second() -> None:
        a_in.wait()
        try:
            with allocator.streaming_decay():
                b_in.set()
                a_out.wait()
                assert set_to == [allocator.STREAM_DECAY_MS]  # still long in here
                raise KeyError("boom")
        except KeyError:
            pass

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set_to == [allocator.STREAM_DECAY_MS, allocator.DECAY_MS]


def test_streaming_decay_leaves_a_pool_telediag_did_not_set_alone(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pyarrow as pa

    from telediag import allocator

    set_to: list[int] = []
    monkeypatch.setattr(pa, "jemalloc_set_decay_ms", set_to.append)
    monkeypatch.setitem(allocator._decay_state, "ours", False)
    with allocator.streaming_decay():
        pass
    assert set_to == []
