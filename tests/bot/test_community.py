"""The operator's terminal for community answers and for forgetting a user."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot import community
from rag.feedback import FeedbackStore
from rag.learned import FILE, LearnedStore
from rag.models import Answer
from rag.settings import Settings
from tests.bot.test_cli import HOSTILE, shows_no_control


async def test_learned_list_approve_export_and_forget(
    tmp_path: Path, make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings()
    learned = LearnedStore(settings.data_dir / FILE)
    pair = await learned.capture(
        platform="discord",
        space="1",
        channel="2",
        thread="3",
        question="How?",
        answer="Like this.",
        link="https://discord.com/channels/1/2/3",
        author="ada",
        author_id=10,
        asker_id=11,
    )
    learned.close()
    assert await community.learned(settings, "list", [], None, all_=False) == 0
    assert f"#{pair} [pending] @ada" in capsys.readouterr().out
    assert await community.learned(settings, "approve", [pair, 99], None, all_=False) == 1
    assert "no community answer #99" in capsys.readouterr().err
    assert await community.learned(settings, "export", [], tmp_path / "out", all_=False) == 0
    exported = (tmp_path / "out" / f"community-{pair}.md").read_text()
    assert exported.startswith("# Community answer by @ada") and "https://discord.com/channels/1/2/3" in exported

    feedback = FeedbackStore(settings.data_dir / "feedback.sqlite3")
    await feedback.record_answer(Answer("q", "a", (), False, (), "r1", {}), 11, guild_id=1)
    feedback.close()
    assert await community.forget(settings, "11", ["discord", "slack"]) == 0
    assert "Removed 2 stored rows for 11." in capsys.readouterr().out, "the question and the pair they asked"


async def test_learned_list_shows_no_control_sequences(
    make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    """ESC sequences in a captured message could erase or recolour lines and hide text from the reviewer."""
    settings = make_settings()
    learned = LearnedStore(settings.data_dir / FILE)
    await learned.capture(
        platform="slack",
        space="T1",
        channel="C1",
        thread="t1",
        question=f"How?{HOSTILE}",
        answer=f"Like this.{HOSTILE}\nThen that.",
        link=f"https://example.slack.com/archives/C1/p1{HOSTILE}",
        author=f"ada{HOSTILE}",
        author_id="U1",
        asker_id="U2",
    )
    learned.close()
    assert await community.learned(settings, "list", [], None, all_=False) == 0
    out = capsys.readouterr().out
    assert shows_no_control(out), repr(out)
    assert "Like this." in out and "Then that." in out and "@ada" in out
