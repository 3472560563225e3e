# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one waiting loop of the step runners (plugins/plugin_utils/_poll.py), on a fake clock."""

from __future__ import annotations

import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._poll import (
    Clock,
    PollStalled,
    PollTimeout,
    every,
    poll_until,
    ramp,
)


class FakeClock:
    def __init__(self) -> None:
        self.time = 0.0
        self.pauses: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.time += seconds

    @property
    def clock(self) -> Clock:
        return Clock(lambda: self.time, self.sleep)


def readings(*values: str):
    remaining = list(values)
    return lambda: remaining.pop(0)


def test_a_first_reading_that_is_done_is_returned_without_a_pause() -> None:
    fake = FakeClock()
    found = poll_until(
        readings(), lambda v: v == "ok", first="ok", timeout=5, interval=every(1), clock=fake.clock
    )
    assert (found, fake.pauses) == ("ok", [])


def test_readings_repeat_until_done_with_the_ramped_pauses_and_a_line_per_wait() -> None:
    fake, waits = FakeClock(), []
    found = poll_until(
        readings("b", "c", "d", "ok"),
        lambda v: v == "ok",
        first="a",
        timeout=60,
        interval=ramp(1.0, 3.0),
        clock=fake.clock,
        on_wait=lambda value, waited: waits.append((value, waited)),
    )
    assert found == "ok"
    assert fake.pauses == [1.0, 2.0, 3.0, 3.0]
    assert waits == [("a", 0.0), ("b", 1.0), ("c", 3.0), ("d", 6.0)]


def test_the_ramp_never_pauses_past_the_timeout() -> None:
    fake = FakeClock()
    with pytest.raises(PollTimeout) as caught:
        poll_until(
            lambda: "pending",
            lambda v: False,
            first="pending",
            timeout=4,
            interval=ramp(1.0, 3.0),
            clock=fake.clock,
        )
    assert fake.pauses == [1.0, 2.0, 1.0]
    assert (caught.value.last, caught.value.waited) == ("pending", 4.0)


def watch_a_stop(fake: FakeClock, read, first: tuple[str, int]):
    """poll_until as a service stop is watched: (state, checkpoint) readings, done at "stopped",
    every second for up to 600 s, stalled when the checkpoint stands still for 30 s."""
    return poll_until(
        read,
        lambda v: v[0] == "stopped",
        first=first,
        timeout=600,
        interval=every(1),
        clock=fake.clock,
        progress=lambda v: v[1],
        stall_limit=lambda v: 30,
    )


def test_readings_whose_progress_stands_still_stall_before_the_timeout() -> None:
    fake = FakeClock()
    with pytest.raises(PollStalled) as caught:
        watch_a_stop(fake, lambda: ("stop_pending", 7), first=("stop_pending", 7))
    assert (caught.value.stalled_for, caught.value.limit) == (30, 30)
    assert caught.value.last == ("stop_pending", 7)


def test_moving_progress_restarts_the_stall_limit() -> None:
    fake = FakeClock()
    checkpoints = iter(range(1, 100))
    found = watch_a_stop(
        fake,
        lambda: ("stop_pending", next(checkpoints)) if fake.time < 50 else ("stopped", 0),
        first=("stop_pending", 0),
    )
    assert found == ("stopped", 0)
    assert fake.time == 50
