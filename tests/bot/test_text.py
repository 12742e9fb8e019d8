"""``sendable``: what any platform is sent carries no control characters, and nothing else is lost."""

from __future__ import annotations

import pytest

from bot.text import sendable


@pytest.mark.parametrize(
    ("raw", "sent"),
    [
        ("a\x00b", "ab"),  # NUL: a Discord-compatible server answered 500
        ("\x1b[31mred\x1b[0m", "[31mred[0m"),  # ESC goes; the printable rest of the sequence stays
        ("next\x85line \x9bCSI", "nextline CSI"),  # C1 controls
        ("bell\x07 del\x7f", "bell del"),
        ("one\r\ntwo\rthree", "one\ntwothree"),  # CRLF is a newline; a lone CR is a control
        ("col\tcol\nrow", "col\tcol\nrow"),  # tab and newline are kept
        ("", ""),
    ],
)
def test_control_characters_are_removed(raw: str, sent: str) -> None:
    assert sendable(raw) == sent


def test_printable_text_is_unchanged() -> None:
    text = (
        "Install with `pip install docent` 🎉 👩‍💻 ❤️ 🇫🇷 — naïve café, 日本語, עברית, "
        "non\u00a0breaking, **bold**, <https://example.com/a?b=c&d=e>\n```py\nprint('hi')\n```"
    )
    assert sendable(text) == text


def test_every_control_character_but_tab_and_newline_is_removed() -> None:
    controls = "".join(map(chr, [*range(0x00, 0x20), *range(0x7F, 0xA0)]))
    assert sendable(f"a{controls}b") == "a\t\nb"
