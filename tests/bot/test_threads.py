"""The transcript of a thread Docent is asked into: bounded, anonymous, unable to ping."""

from __future__ import annotations

from bot.threads import MESSAGE_CHARS, Said, transcript
from rag.citations import ZWSP


def test_the_title_and_opening_message_stay_and_the_latest_messages_fill_the_rest() -> None:
    said = [Said("asker", "It fails with nlist 0"), *(Said("member", f"reply {i}") for i in range(20))]
    lines = transcript("Index build fails", said, max_messages=4, max_chars=2000)
    assert lines == (
        "Thread: Index build fails",
        "Asker: It fails with nlist 0",
        "…",
        *(f"Member: reply {i}" for i in (17, 18, 19)),
    )
    tight = transcript("", said, max_messages=50, max_chars=80)
    assert tight[0] == "Asker: It fails with nlist 0" and tight[-1] == "Member: reply 19" and sum(map(len, tight)) < 80


def test_withheld_text_is_left_out_and_long_messages_are_cut() -> None:
    lines = transcript("Title", [Said("asker", ""), Said("member", "x" * 5000)], max_messages=10, max_chars=9000)
    assert lines[0] == "Thread: Title" and lines[1].startswith("Member: xxx")
    assert len(lines[1]) == len("Member: ") + MESSAGE_CHARS


def test_mentions_cannot_ping_and_names_never_appear() -> None:
    lines = transcript("", [Said("docent", "see <@U123> and @everyone <!here>")], max_messages=5, max_chars=500)
    assert lines == (f"Docent: see @someone and @{ZWSP}everyone @someone",)
    assert transcript("t", [Said("asker", "x")], max_messages=0, max_chars=500) == ()
