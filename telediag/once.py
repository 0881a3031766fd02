"""Packaged tables loaded once per process, however many rule threads ask for them."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

_T = TypeVar("_T")


class Once(Generic[_T]):
    """A loader run once per process, however many threads ask at the same moment
    (``functools.cache`` lets each of them run it: rules run in threads, and two that
    asked for the handset catalog together built it twice)."""

    def __init__(self, load: Callable[[], _T]) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._value: _T | None = None
        functools.update_wrapper(self, load)

    def __call__(self) -> _T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._load()
                value = self._value
        return value

    def cache_clear(self) -> None:
        """Forget the value: the next call loads again."""
        with self._lock:
            self._value = None
