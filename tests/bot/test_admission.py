"""Admission rules on a controlled clock: per-user cooldown, per-server rate, and one notice per window."""

from __future__ import annotations

from bot.admission import Admission
from tests.clock import Clock


def test_user_cooldown_then_admitted_again() -> None:
    clock = Clock(1000.0)
    admission = Admission(concurrency=1, max_queue=1, cooldown_s=8, clock=clock)
    assert admission.refusal(1, 10) is None
    refusal = admission.refusal(1, 10)
    assert refusal is not None and "wait 8s" in refusal.message
    assert admission.refusal(2, 10) is None, "other users are not affected"
    clock.now += 8
    assert admission.refusal(1, 10) is None


def test_a_busy_server_is_limited_per_minute_without_affecting_others() -> None:
    clock = Clock(1000.0)
    admission = Admission(concurrency=1, max_queue=1, cooldown_s=0, guild_per_minute=3, clock=clock)
    for user in range(3):
        assert admission.refusal(user, 10) is None
        clock.now += 10
    refusal = admission.refusal(99, 10)
    assert refusal is not None and "3 questions in the last minute" in refusal.message and "30s" in refusal.message
    assert admission.refusal(99, 20) is None, "another server has its own budget"
    assert admission.refusal(99, None) is None, "direct messages have no server budget"
    clock.now += 30  # the first question leaves the window
    assert admission.refusal(99, 10) is None


def test_a_refused_server_question_does_not_start_the_user_cooldown() -> None:
    clock = Clock(1000.0)
    admission = Admission(concurrency=1, max_queue=1, cooldown_s=8, guild_per_minute=1, clock=clock)
    assert admission.refusal(1, 10) is None
    assert "server" in getattr(admission.refusal(2, 10), "message", "")
    assert admission.refusal(2, 20) is None, "user 2 was not put on cooldown by the refusal"


def notices(admission: Admission, user: int, guild: int | None, times: int) -> list[bool]:
    refusals = [admission.refusal(user, guild) for _ in range(times)]
    assert all(r is not None for r in refusals), refusals
    return [r.notify for r in refusals if r is not None]


def test_a_user_who_keeps_asking_during_the_cooldown_is_told_once() -> None:
    clock = Clock(1000.0)
    admission = Admission(concurrency=1, max_queue=1, cooldown_s=30, clock=clock)
    assert admission.refusal(1, 10) is None
    assert notices(admission, 1, 10, 5) == [True, False, False, False, False]
    clock.now += 29
    assert notices(admission, 1, 10, 1) == [False], "still the same cooldown"
    assert admission.refusal(2, 10) is None
    assert notices(admission, 2, 10, 2) == [True, False], "each user gets their own notice"

    clock.now += 1  # user 1's cooldown is over: the next question is answered and starts a new one
    assert admission.refusal(1, 10) is None
    assert notices(admission, 1, 10, 2) == [True, False]


def test_a_full_server_tells_each_asker_once_per_window() -> None:
    clock = Clock(1000.0)
    admission = Admission(concurrency=1, max_queue=1, cooldown_s=0, guild_per_minute=1, clock=clock)
    assert admission.refusal(1, 10) is None
    assert notices(admission, 2, 10, 3) == [True, False, False]
    assert notices(admission, 3, 10, 2) == [True, False], "another asker is told too"
    clock.now += 59
    assert notices(admission, 2, 10, 1) == [False]
    clock.now += 1  # the window has moved on: a question is admitted and the server is full again
    assert admission.refusal(4, 10) is None
    assert notices(admission, 2, 10, 1) == [True], "a new window, a new notice"
    assert notices(admission, 2, 10, 1) == [False]
