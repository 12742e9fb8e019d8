"""``python -m bot gaps`` in the terminal and as JSON: the operator's gap report, askers' words shown but never acted
on, private questions counted but never shown, ``--since`` parsed."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import pytest

from bot.__main__ import _since
from bot.gaps import parse_since, print_gaps, title
from rag.feedback import FeedbackStore
from rag.models import Answer
from rag.settings import Settings
from tests.bot.test_cli import HOSTILE, shows_no_control

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("7d", NOW - 7 * 86400),
        ("12h", NOW - 12 * 3600),
        ("2w", NOW - 14 * 86400),
        ("1.5d", NOW - 1.5 * 86400),
        ("2027-01-15", 1_799_971_200.0),
        ("2027-01-15T12:00+01:00", 1_800_010_800.0),
    ],
)
def test_since_is_a_time_ago_or_a_date(given: str, expected: float) -> None:
    assert parse_since(given, NOW) == expected


def test_a_bad_since_is_refused_by_the_command_line() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="7d, 12h, 2w or a date"):
        _since("last tuesday")


def test_titles_name_the_scope() -> None:
    assert title(None, None) == "Knowledge gaps — every platform"
    assert title("slack", "T1") == "Knowledge gaps — Slack workspace T1"
    assert title(None, "101") == "Knowledge gaps — space 101"


async def test_the_gap_report_in_the_terminal_and_as_json(
    make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings()
    assert await print_gaps(settings, as_json=False) == 0
    assert "0 gap questions in 0 clusters" in capsys.readouterr().out, "no database: nothing, and none created"
    assert not (settings.data_dir / "feedback.sqlite3").exists()

    feedback = FeedbackStore(settings.data_dir / "feedback.sqlite3")
    for i, question in enumerate((f"How much does Zilliz Cloud cost?{HOSTILE}", "zilliz cloud pricing per month?")):
        await feedback.record_answer(Answer(question, "no", (), True, (), f"r{i}"), 7, guild_id=101)
    await feedback.record_answer(Answer("my private zilliz bill", "no", (), True, (), "p"), 7, private=True)
    feedback.close()

    assert await print_gaps(settings, as_json=False, platform="discord", space="101") == 0
    out = capsys.readouterr().out
    assert shows_no_control(out), repr(out)
    assert out.startswith("Knowledge gaps — Discord server 101\n2 gap questions in 1 cluster.")
    assert "How much does Zilliz Cloud cost?" in out and "No nearest docs pages" in out, "nothing indexed here"

    assert await print_gaps(settings, as_json=True) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["questions"], report["private"]) == (3, 1)
    [cluster] = report["clusters"]
    assert cluster["size"] == 3 and "my private zilliz bill" not in json.dumps(report)
