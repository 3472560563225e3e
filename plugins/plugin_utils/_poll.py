# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way the step runners wait for a host: read, judge, pause, read again, within a
timeout, and give up early when nothing moves.

`poll_until(read, done, first=..., timeout=..., interval=...)` returns the first reading that is
`done`, raises PollTimeout when the timeout runs out first, and PollStalled when `progress` of
the readings has not changed for `stall_limit` seconds. Time comes from one injectable `Clock`,
so tests run the waits on a fake clock. A runner that waits for a worker thread while it polls
(update.exe runs in one) pauses on `clock.woken_by(thread)`, whose pauses end when the thread does.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import threading
import time
import typing as t
from dataclasses import dataclass, replace

T = t.TypeVar("T")


def _join(thread: threading.Thread, seconds: float) -> None:
    thread.join(seconds)


@dataclass(frozen=True)
class Clock:
    """Monotonic time and the two ways to let it pass: `sleep(seconds)`, and `wait_for(thread,
    seconds)`, which returns as soon as `thread` ends. A fake clock moves its time in both
    without waiting."""

    now: t.Callable[[], float] = time.monotonic
    sleep: t.Callable[[float], None] = time.sleep
    wait_for: t.Callable[[threading.Thread, float], None] = _join

    def woken_by(self, thread: threading.Thread) -> Clock:
        """This clock, with pauses that end early when `thread` ends, and plain sleeps once it
        has ended: for `poll_until` while a worker thread runs (its end is then seen at once)."""

        def pause(seconds: float) -> None:
            if thread.is_alive():
                self.wait_for(thread, seconds)
            else:
                self.sleep(seconds)

        return replace(self, sleep=pause)


SYSTEM_CLOCK = Clock()


class PollTimeout(Exception):
    """The timeout ran out before a reading was done. `last` is the last reading."""

    def __init__(self, last: t.Any, waited: float) -> None:
        super().__init__(f"not done after {waited:.0f} s")
        self.last = last
        self.waited = waited


class PollStalled(Exception):
    """The readings' progress did not change for the stall limit. `last` is the last reading;
    `limit` the limit it crossed (what a message should quote: `stalled_for` is the limit plus
    however long the last reading took, which varies with the host's load)."""

    def __init__(self, last: t.Any, stalled_for: float, limit: float) -> None:
        super().__init__(f"no progress for {stalled_for:.0f} s")
        self.last = last
        self.stalled_for = stalled_for
        self.limit = limit


def every(seconds: float) -> t.Callable[[int, float], float]:
    """A fixed pause between readings."""
    return lambda waits, remaining: seconds


def ramp(first: float, most: float) -> t.Callable[[int, float], float]:
    """Pauses of `first`, `first + 1`, ... up to `most` seconds, never past the timeout (a
    service that settles quickly is seen quickly; a slow one is not asked too often)."""
    return lambda waits, remaining: min(first + waits, most, max(remaining, 0.1))


def poll_until(
    read: t.Callable[[], T],
    done: t.Callable[[T], bool],
    *,
    first: T,
    timeout: float,
    interval: t.Callable[[int, float], float],
    clock: Clock = SYSTEM_CLOCK,
    on_wait: t.Callable[[T, float], None] | None = None,
    progress: t.Callable[[T], t.Hashable] | None = None,
    stall_limit: t.Callable[[T], float] | None = None,
) -> T:
    """Read until `done(reading)`, starting from the reading `first` already taken.

    Before each pause: PollTimeout once `timeout` seconds have passed, PollStalled once
    `progress(reading)` has stayed the same for `stall_limit(reading)` seconds, then
    `on_wait(reading, seconds waited)`. `interval(pauses so far, seconds left)` is the pause."""
    started = clock.now()
    reading = first
    moved, token = started, progress(first) if progress else None
    waits = 0
    while not done(reading):
        now = clock.now()
        waited = now - started
        if waited >= timeout:
            raise PollTimeout(reading, waited)
        if stall_limit is not None and now - moved >= stall_limit(reading):
            raise PollStalled(reading, now - moved, stall_limit(reading))
        if on_wait is not None:
            on_wait(reading, waited)
        clock.sleep(interval(waits, timeout - waited))
        waits += 1
        reading = read()
        if progress is not None and progress(reading) != token:
            moved, token = clock.now(), progress(reading)
    return reading
