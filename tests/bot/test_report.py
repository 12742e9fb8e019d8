"""``python -m bot report`` in the terminal: what askers typed is shown, never acted on by the terminal."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from bot.report import print_report
from rag.feedback import FeedbackStore
from rag.models import Answer
from rag.settings import Settings
from tests.bot.test_cli import HOSTILE, shows_no_control


async def test_the_report_shows_no_control_sequences_from_questions(
    make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings()
    feedback = FeedbackStore(settings.data_dir / "feedback.sqlite3")
    answer = Answer(f"How?{HOSTILE}", f"Like this.{HOSTILE}", (), False, (), "r1", {})
    await feedback.record_answer(answer, 11, guild_id=1, private=False)
    await feedback.vote("r1", 12, False, guild_id=1)
    feedback.close()

    assert await print_report(settings, as_json=False) == 0
    out = capsys.readouterr().out
    assert shows_no_control(out), repr(out)
    assert "How?" in out and "Like this." in out

    assert await print_report(settings, as_json=True) == 0
    out = capsys.readouterr().out
    assert shows_no_control(out), "JSON escapes them"
    listed = json.loads(out)
    assert listed[0]["report"]["top_questions"] == [[f"How?{HOSTILE}", 1]], "and keeps the text"
    [resolution] = listed[0]["report"]["resolution"]
    assert (resolution["questions"], resolution["unresolved"], resolution["unresolved_rate"]) == (1, 1, 1.0)
