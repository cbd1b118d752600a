"""One time budget for all the SonarQube calls of one SCIM request, retries included.

A SCIM request wraps its work in `with deadline(seconds):`; every SonarQube call made inside (in this task
or in tasks it starts) retries only while the budget lasts. Calls made outside any deadline get the
configured default each (`sonar_deadline`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Deadline:
    """A point in time on `clock` after which no further SonarQube attempt is started."""

    expires_at: float
    clock: Clock

    @classmethod
    def after(cls, seconds: float, clock: Clock = time.monotonic) -> Deadline:
        return cls(clock() + seconds, clock)

    def remaining(self) -> float:
        return max(0.0, self.expires_at - self.clock())


_current: ContextVar[Deadline | None] = ContextVar("sonarqube_deadline", default=None)


def current_deadline() -> Deadline | None:
    """The deadline of the enclosing `deadline()` block, if any."""
    return _current.get()


@contextmanager
def deadline(seconds: float, *, clock: Clock = time.monotonic) -> Iterator[Deadline]:
    """Give every SonarQube call inside the block `seconds` in total (an enclosing shorter budget wins)."""
    budget = Deadline.after(seconds, clock)
    outer = _current.get()
    if outer is not None and outer.remaining() < seconds:
        budget = outer
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)
