# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one waiting loop of the step runners (plugins/plugin_utils/_poll.py), on the fake clock of
tests/unit/conftest.py, and the real clock's wait on a thread."""

from __future__ import annotations

import threading
import typing as t

import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._poll import (
    Clock,
    PollStalled,
    PollTimeout,
    every,
    poll_until,
    ramp,
)


def readings(*values: str):
    remaining = list(values)
    return lambda: remaining.pop(0)


def test_a_first_reading_that_is_done_is_returned_without_a_pause(fake_clock: t.Any) -> None:
    found = poll_until(
        readings(),
        lambda v: v == "ok",
        first="ok",
        timeout=5,
        interval=every(1),
        clock=fake_clock.clock,
    )
    assert (found, fake_clock.pauses) == ("ok", [])


def test_readings_repeat_until_done_with_the_ramped_pauses_and_a_line_per_wait(
    fake_clock: t.Any,
) -> None:
    waits = []
    found = poll_until(
        readings("b", "c", "d", "ok"),
        lambda v: v == "ok",
        first="a",
        timeout=60,
        interval=ramp(1.0, 3.0),
        clock=fake_clock.clock,
        on_wait=lambda value, waited: waits.append((value, waited)),
    )
    assert found == "ok"
    assert fake_clock.pauses == [1.0, 2.0, 3.0, 3.0]
    assert waits == [("a", 0.0), ("b", 1.0), ("c", 3.0), ("d", 6.0)]


def test_the_ramp_never_pauses_past_the_timeout(fake_clock: t.Any) -> None:
    with pytest.raises(PollTimeout) as caught:
        poll_until(
            lambda: "pending",
            lambda v: False,
            first="pending",
            timeout=4,
            interval=ramp(1.0, 3.0),
            clock=fake_clock.clock,
        )
    assert fake_clock.pauses == [1.0, 2.0, 1.0]
    assert (caught.value.last, caught.value.waited) == ("pending", 4.0)


def watch_a_stop(fake: t.Any, read: t.Any, first: tuple[str, int]) -> t.Any:
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


def test_readings_whose_progress_stands_still_stall_before_the_timeout(fake_clock: t.Any) -> None:
    with pytest.raises(PollStalled) as caught:
        watch_a_stop(fake_clock, lambda: ("stop_pending", 7), first=("stop_pending", 7))
    assert (caught.value.stalled_for, caught.value.limit) == (30, 30)
    assert caught.value.last == ("stop_pending", 7)


def test_moving_progress_restarts_the_stall_limit(fake_clock: t.Any) -> None:
    checkpoints = iter(range(1, 100))
    found = watch_a_stop(
        fake_clock,
        lambda: ("stop_pending", next(checkpoints)) if fake_clock.time < 50 else ("stopped", 0),
        first=("stop_pending", 0),
    )
    assert found == ("stopped", 0)
    assert fake_clock.time == 50


def test_the_real_clock_waits_for_a_thread_only_until_it_ends() -> None:
    release = threading.Event()
    thread = threading.Thread(target=release.wait, daemon=True)
    thread.start()
    Clock().wait_for(thread, 0.01)
    assert thread.is_alive()
    release.set()
    Clock().wait_for(thread, 30)
    assert not thread.is_alive()


def test_a_clock_woken_by_a_thread_waits_on_it_while_it_runs_and_sleeps_once_it_ended() -> None:
    calls: list[tuple[str, float]] = []
    clock = Clock(
        lambda: 0.0,
        lambda seconds: calls.append(("sleep", seconds)),
        lambda thread, seconds: calls.append(("wait_for", seconds)),
    )
    release = threading.Event()
    thread = threading.Thread(target=release.wait, daemon=True)
    thread.start()
    clock.woken_by(thread).sleep(2.0)
    release.set()
    thread.join()
    clock.woken_by(thread).sleep(3.0)
    assert calls == [("wait_for", 2.0), ("sleep", 3.0)]


def test_polling_while_a_thread_runs_ends_with_the_thread_and_no_time_passes(
    fake_clock: t.Any,
) -> None:
    release = threading.Event()
    thread = threading.Thread(target=release.wait, daemon=True)
    thread.start()

    def wait_for(thread: threading.Thread, seconds: float) -> None:
        release.set()  # the thread ends during the first wait
        fake_clock.wait_for(thread, seconds)

    found = poll_until(
        thread.is_alive,
        lambda alive: not alive,
        first=True,
        timeout=60,
        interval=every(10),
        clock=Clock(fake_clock.now, fake_clock.sleep, wait_for).woken_by(thread),
    )
    assert (found, fake_clock.time) == (False, 0.0)


def test_a_thread_that_hangs_is_waited_on_until_the_timeout_on_the_fake_clock(
    fake_clock: t.Any,
) -> None:
    fake_clock.thread_grace = 0.0
    release = threading.Event()
    thread = threading.Thread(target=release.wait, daemon=True)
    thread.start()
    try:
        with pytest.raises(PollTimeout):
            poll_until(
                thread.is_alive,
                lambda alive: not alive,
                first=True,
                timeout=60,
                interval=every(10),
                clock=fake_clock.clock.woken_by(thread),
            )
    finally:
        release.set()
    assert fake_clock.pauses == [10] * 6
