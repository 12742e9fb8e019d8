"""Admission rules on a controlled clock: per-user cooldown and per-server rate."""

from __future__ import annotations

from bot.admission import Admission


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_user_cooldown_then_admitted_again() -> None:
    clock = Clock()
    admission = Admission(concurrency=1, max_queue=1, cooldown_s=8, clock=clock)
    assert admission.refusal(1, 10) is None
    refusal = admission.refusal(1, 10)
    assert refusal is not None and "wait 8s" in refusal
    assert admission.refusal(2, 10) is None, "other users are not affected"
    clock.now += 8
    assert admission.refusal(1, 10) is None


def test_a_busy_server_is_limited_per_minute_without_affecting_others() -> None:
    clock = Clock()
    admission = Admission(concurrency=1, max_queue=1, cooldown_s=0, guild_per_minute=3, clock=clock)
    for user in range(3):
        assert admission.refusal(user, 10) is None
        clock.now += 10
    refusal = admission.refusal(99, 10)
    assert refusal is not None and "3 questions in the last minute" in refusal and "30s" in refusal
    assert admission.refusal(99, 20) is None, "another server has its own budget"
    assert admission.refusal(99, None) is None, "direct messages have no server budget"
    clock.now += 30  # the first question leaves the window
    assert admission.refusal(99, 10) is None


def test_a_refused_server_question_does_not_start_the_user_cooldown() -> None:
    clock = Clock()
    admission = Admission(concurrency=1, max_queue=1, cooldown_s=8, guild_per_minute=1, clock=clock)
    assert admission.refusal(1, 10) is None
    assert "server" in (admission.refusal(2, 10) or "")
    assert admission.refusal(2, 20) is None, "user 2 was not put on cooldown by the refusal"
